#define _GNU_SOURCE
#include "CPGCloneSystem.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__)
#include <malloc.h>
#endif

void CPGCloneSystem_tune_malloc(void) {
#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    // pgclone's buffers (S3 parts, zstd jobs, stream chunks) are allocated on one thread and freed on
    // another. By default glibc gives each thread an arena of its own and, after the first large
    // buffer is freed, raises its mmap threshold to that buffer's size, so that later large buffers
    // come from arenas and stay resident after they are freed: RSS then grows well above the live
    // buffers (PLATFORM.md §0). A fixed threshold maps every buffer of 256 KiB or more (S3 parts,
    // zstd jobs) on its own and unmaps it on free; two arenas bound what small allocations can
    // strand. Stream chunks (128 KiB reads, zstd's 128 KiB output blocks) stay below it: mapped one
    // by one, each page of each chunk was a fresh page fault (90,000 per 230 MiB restored, against
    // 8,000 now, for 2 MiB more peak RSS; BENCHMARKS.md).
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 2);
#endif
}

int CPGCloneSystem_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int CPGCloneSystem_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}
