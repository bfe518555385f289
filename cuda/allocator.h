#pragma once
// The CUDA caching allocator (CUDA-only header: include it from cuda/ alone).
//
// cudaMalloc and cudaFree are slow (cudaFree even waits for the whole device), and a training
// step allocates and frees the same sizes over and over. So freed blocks are not returned to
// the driver: they go onto a free list for their size class and the next request of that class
// gets one back immediately.
//
//  * Size classes: requests are rounded up to a multiple of 512 bytes, above 1 MiB to one of 8
//    steps per power of two (at most 12.5% slack), so that e.g. activations whose size varies
//    slightly still share blocks, and above 64 MiB to a multiple of 2 MiB (at most 3% slack on
//    the large gradient buffers; allocator_round_size in allocator.cpp).
//  * Streams: a block remembers the stream it was allocated for and is only reused for that
//    stream. On one stream, work runs in order, so a block freed by the host while kernels that
//    use it are still queued can be given to the next op at once: its kernels queue behind them.
//  * Out of memory: on the first failure the cache is released (cudaFree) and the request retried;
//    if it fails again the error says how much was asked for, cached, in use and free.
//  * deallocate() never calls CUDA (and so never fails): it runs in destructors, possibly during
//    program exit after the CUDA runtime has shut down.
#include <cstddef>

#include "ember/memory.h"

namespace ember::cuda {

// Statistics of one device (see ember/memory.h): current/peak count the rounded block sizes in
// use, cached_bytes the blocks waiting on free lists.
MemoryStats allocator_stats(int device);
void allocator_reset_peak(int device);
// Returns every cached block of every device to the driver.
void allocator_release_cache();
// Rounded size that a request of `nbytes` occupies (exposed for tests and comments).
size_t allocator_round_size(size_t nbytes);

}  // namespace ember::cuda
