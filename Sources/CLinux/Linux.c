#define _GNU_SOURCE
#include "CLinux.h"

#include <fcntl.h>
#include <stdio.h>
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
