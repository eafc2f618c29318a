"""Plain numpy versions of every op: readable, slow, and the oracle the tests compare against.
Same names and signatures as `fastconv.ops`; no hot path uses them."""
from .activation import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_pool import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
