import os

import matplotlib

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")

# Notebook kernels run two at a time under pytest-xdist on two cores. With PyTorch's default
# of one OpenMP thread per core, the kernels' spinning threads oversubscribe the machine and
# small-tensor loops slow down by an order of magnitude. One thread each is faster here.
os.environ.setdefault("OMP_NUM_THREADS", "1")
