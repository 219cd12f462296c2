#define _GNU_SOURCE
#include "CLinux.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/vfs.h>
#include <unistd.h>

int synthd_syncfs(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int result = syncfs(fd);
    close(fd);
    return result;
}

int synthd_syncfs_fd(int fd) {
    return syncfs(fd);
}

void synthd_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

long long synthd_filesystem_type(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return (long long)(unsigned int)info.f_type;
}

int synthd_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int synthd_release_free_memory(void) {
    return malloc_trim(0);
}
