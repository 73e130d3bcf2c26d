/*
 * Guest side of test/vm/mmio-map-race.test.ts, built static on the host.
 *
 *   mmio-map-race BAR0_RESOURCE OTHER_CONFIG SECONDS
 *
 * One thread, on CPU 1, reads hilbox-pci's ID register through a mapping of BAR0 and counts every
 * read that does not return the value read first. The main thread, on CPU 0, turns another
 * device's memory decoding off and on through its config space, so QEMU commits a new memory map
 * twice per round while CPU 1 is inside translated code. Prints one line of JSON.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PCI_COMMAND 4
#define PCI_COMMAND_MEMORY 0x2
#define MAX_SEEN 8

static volatile int stop;
static volatile uint32_t *regs;
static uint32_t expected;
static unsigned long reads, wrong;
static uint32_t seen[MAX_SEEN];

static int pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

static void *reader(void *arg)
{
    (void)arg;
    if (pin(1) != 0) {
        perror("sched_setaffinity(1)");
        exit(2);
    }
    while (!stop) {
        for (int i = 0; i < 1000; i++) {
            uint32_t v = regs[0];

            if (v != expected) {
                if (wrong < MAX_SEEN)
                    seen[wrong] = v;
                wrong++;
            }
        }
        reads += 1000;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s BAR0_RESOURCE OTHER_CONFIG SECONDS\n", argv[0]);
        return 2;
    }
    int seconds = atoi(argv[3]);
    int bar = open(argv[1], O_RDONLY | O_SYNC);
    if (bar < 0) {
        perror(argv[1]);
        return 2;
    }
    regs = mmap(NULL, 4096, PROT_READ, MAP_SHARED, bar, 0);
    if (regs == MAP_FAILED) {
        perror("mmap BAR0");
        return 2;
    }
    int cfg = open(argv[2], O_RDWR);
    uint16_t cmd;
    if (cfg < 0 || pread(cfg, &cmd, sizeof(cmd), PCI_COMMAND) != sizeof(cmd)) {
        perror(argv[2]);
        return 2;
    }
    if (!(cmd & PCI_COMMAND_MEMORY)) {
        fprintf(stderr, "%s: memory decoding is off (command 0x%04x)\n", argv[2], cmd);
        return 2;
    }
    expected = regs[0];
    if (pin(0) != 0) {
        perror("sched_setaffinity(0)");
        return 2;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0) {
        perror("pthread_create");
        return 2;
    }
    unsigned long commits = 0;
    uint16_t off = cmd & ~PCI_COMMAND_MEMORY;
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end) {
        if (pwrite(cfg, &off, sizeof(off), PCI_COMMAND) != sizeof(off) ||
            pwrite(cfg, &cmd, sizeof(cmd), PCI_COMMAND) != sizeof(cmd)) {
            perror("pwrite command");
            stop = 1;
            pthread_join(t, NULL);
            return 2;
        }
        commits += 2;
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("{\"expected\":%u,\"reads\":%lu,\"commits\":%lu,\"wrong\":%lu,\"seen\":[", expected, reads, commits, wrong);
    for (unsigned long i = 0; i < wrong && i < MAX_SEEN; i++)
        printf("%s%u", i ? "," : "", seen[i]);
    printf("]}\n");
    return 0;
}
