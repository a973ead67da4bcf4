/* The baseline of the FileStore benchmark: the same durable put, read and replace that FileStore
   does (temp file, fsync, rename, fsync folder), with nothing else. Prints operations per second. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static void put(int dir, const char *folder, const char *name, const char *value, size_t n) {
    char tmp[512], path[512];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", folder, name);
    snprintf(path, sizeof path, "%s/%s.rec", folder, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (write(fd, value, n) != (ssize_t)n) exit(1);
    fsync(fd); close(fd); rename(tmp, path); fsync(dir);
}
int main(int argc, char **argv) {
    const char *folder = argv[1]; int operations = atoi(argv[2]);
    char value[512]; memset(value, 'x', sizeof value);
    int dir = open(folder, O_RDONLY | O_DIRECTORY);
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    char name[64], path[512], buf[1024];
    for (int i = 0, done = 0; done < operations; i++, done += 3) {
        snprintf(name, sizeof name, "k%d", i % 1000);
        put(dir, folder, name, value, sizeof value);
        snprintf(path, sizeof path, "%s/%s.rec", folder, name);
        int fd = open(path, O_RDONLY); if (read(fd, buf, sizeof buf) < 0) exit(1); close(fd);
        put(dir, folder, name, value, sizeof value);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%d\n", (int)(operations / s));
    return 0;
}
