#include "CPGCloneSystem.h"

#if defined(__linux__)
#include <malloc.h>
#endif

void CPGCloneSystem_tune_malloc(void) {
#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    // pgclone's buffers (S3 parts, zstd jobs, stream chunks) are allocated on one thread and freed on
    // another. By default glibc gives each thread an arena of its own and, after the first large
    // buffer is freed, raises its mmap threshold to that buffer's size, so that later large buffers
    // come from arenas and stay resident after they are freed: RSS then grows well above the live
    // buffers (PLATFORM.md §0). A fixed threshold maps every buffer of 128 KiB or more (every stream
    // chunk, S3 part and zstd job) on its own and unmaps it on free; two arenas bound what small
    // allocations can strand.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);
#endif
}
