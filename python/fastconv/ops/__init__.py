"""One function per kernel, forward and backward. Each picks the backend by where its input lives
(numpy arrays: the CPU module) and the bindings validate every argument."""
from .activation import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_pool import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from ._args import pair  # noqa: F401
