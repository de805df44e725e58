"""Process environment that CPU training wants.

glibc's default malloc hands large tensors' memory back to the OS after every batch and
faults it in again for the next; these thresholds keep it, which makes CPU training 30-40 %
faster. glibc reads ``GLIBC_TUNABLES`` only when a process starts, so it is set for new
processes (``qhpo run`` re-executes itself once; Ray workers inherit it).
"""

MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"
