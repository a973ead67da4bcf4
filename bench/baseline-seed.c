/* The floor of seeding tenants into a file store on this machine: the five files a seeded
   tenant is (its due-index entry in a per-minute folder, the credential, the token's entry in
   the expiry index, the Meta user index entry in its shared folder, the integration), each made
   the cheapest atomic way there is for a new file, as the file store makes a new record: an
   unnamed file (O_TMPFILE) written and linked in under its name by its descriptor
   (AT_EMPTY_PATH). No fsync (seeding writes none), no lock, no read. Two processes, as many as
   the machine the benchmarks ran on has cores. Prints tenants per second. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
static void folder(const char *path) {
    char partial[512];
    for (const char *p = path; (p = strchr(p + 1, '/')) != NULL;) {
        snprintf(partial, sizeof partial, "%.*s", (int)(p - path), path);
        if (mkdir(partial, 0700) != 0 && errno != EEXIST) exit(1);
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) exit(1);
}
static void put(const char *dir, const char *name, size_t n) {
    static char value[512];
    char path[600];
    snprintf(path, sizeof path, "%s/%s.rec", dir, name);
    int fd = open(dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd < 0) {
        folder(dir);
        fd = open(dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
    }
    if (fd < 0 || write(fd, value, n) != (ssize_t)n) exit(1);
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) != 0 || close(fd) != 0) exit(1);
}
int main(int argc, char **argv) {
    const char *root = argv[1]; int tenants = atoi(argv[2]);
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    for (int worker = 0; worker < 2; worker++) {
        if (fork() == 0) {
            char dir[512], name[64];
            for (int i = worker; i < tenants; i += 2) {
                double day = (i + 1) * 0.6180339887498949; day -= (long)day;
                snprintf(name, sizeof name, "seed_%d", i);
                snprintf(dir, sizeof dir, "%s/meta/due/%010d", root, 29940000 + (int)(day * 1440)); put(dir, name, 0);
                snprintf(dir, sizeof dir, "%s/meta/credential", root); put(dir, name, 433);
                snprintf(dir, sizeof dir, "%s/meta/token-expiry/%010d", root, 29940000 + (int)(day * 1200)); put(dir, name, 0);
                snprintf(dir, sizeof dir, "%s/meta/meta-users/%03d", root, (2000000000 + i) % 1000);
                { char entry[96]; snprintf(entry, sizeof entry, "%d-%s", 2000000000 + i, name); put(dir, entry, 2); }
                snprintf(dir, sizeof dir, "%s/meta/integration", root); put(dir, name, 366);
            }
            _exit(0);
        }
    }
    int status, failed = 0;
    while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (failed) return 1;
    printf("%d\n", (int)(tenants / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9)));
    return 0;
}
