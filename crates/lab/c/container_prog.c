/*
 * container_prog: the program the seed's Task 2 runs inside a hand-made container.
 *
 * Written in C and linked dynamically against libc on purpose: the point of the exercise is a
 * binary plus its shared-library closure (libc.so.6 and the dynamic loader), which a
 * `conductor image from-binary` image must carry. The Rust workspace links crt-static, and a
 * static binary has no closure to find.
 *
 * It prints its pid and a child's pid (1 and 2 in a new pid namespace), lists "/" (the
 * container's root after chroot/pivot_root), the hostname (its UTS namespace), and times a
 * CPU-bound loop (slower under a cgroup CPU limit).
 *
 * Usage: container_prog [MILLIONS]    iterations of the loop, in millions (default below);
 *        or CONTAINER_PROG_MILLIONS=N in the environment. The argument wins.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* About 1.5 s on one core of the 2-core development machine. */
#define DEFAULT_MILLIONS 1000

static const char *SEPARATOR = "_ _ _ _ _ _ _ _ _ _ _ _ _ _ ";

static void die(const char *what) {
    fprintf(stderr, "container_prog: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The parent prints first; the child prints once the parent's line is out (stdout flushed
 * before fork so that the line is not duplicated into the child's buffer). */
static void pids(void) {
    printf("Process PID: %d\n", (int)getpid());
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        printf("Child Process PID: %d\n", (int)getpid());
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) < 0)
        die("waitpid");
}

/* Directory order, as readdir(3) returns it (the seed's sample is unsorted too). */
static void list_root(void) {
    printf("%s\n\nFiles/Directories in root directory:\n", SEPARATOR);
    DIR *d = opendir("/");
    if (!d)
        die("opendir /");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        printf("%s\n", e->d_name);
    closedir(d);
    printf("%s\n\n", SEPARATOR);
}

static void hostname(void) {
    char name[HOST_NAME_MAX + 1] = {0};
    if (gethostname(name, sizeof name - 1) < 0)
        die("gethostname");
    printf("Hostname within container: %s\n\n", name);
}

static long millions(int argc, char **argv) {
    const char *s = argc > 1 ? argv[1] : getenv("CONTAINER_PROG_MILLIONS");
    if (!s || !*s)
        return DEFAULT_MILLIONS;
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || *end || n < 0 || n > 1000000) {
        fprintf(stderr, "container_prog: %s: not a number of millions of iterations (0-1000000)\n", s);
        exit(2);
    }
    return n;
}

/* A serial dependency chain (a 64-bit LCG), so the compiler can neither vectorise it nor
 * replace it with a closed form: the time measures one core's share of the CPU. */
static uint64_t compute(long n) {
    uint64_t x = 1, sum = 0;
    for (uint64_t i = 0; i < (uint64_t)n * 1000000u; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        sum += x >> 40;
    }
    return sum;
}

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void benchmark(long n) {
    uint64_t start = now_ms();
    uint64_t value = compute(n);
    uint64_t taken = now_ms() - start;
    printf("Computation Benchmark:\nTime Taken: %" PRIu64 " ms\nValue (Ignore): %" PRIu64 "\n", taken, value);
}

int main(int argc, char **argv) {
    long n = millions(argc, argv);
    pids();
    list_root();
    hostname();
    benchmark(n);
    return 0;
}
