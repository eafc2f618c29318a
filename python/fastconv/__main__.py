"""`python -m fastconv`: say what this installation was built with and what it can use here."""
import json

import fastconv as fc

if __name__ == "__main__":
    info = fc.build_info()
    print(json.dumps(info, indent=2))
    print("CUDA:", "available," if fc.cuda_available() else "not available:", fc.cuda_status())
