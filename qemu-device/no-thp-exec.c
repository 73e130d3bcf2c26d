/*
 * hilbox-no-thp: runs a program with transparent huge pages disabled for it.
 *
 *   hilbox-no-thp PROGRAM [ARG...]
 *
 * The orchestrator starts QEMU through it (orchestrator/src/vm/qemu-command.ts). QEMU asks the
 * host for transparent huge pages on guest RAM and on TCG's code buffer (MADV_HUGEPAGE); on a
 * host that backs fresh memory lazily (a VM whose free pages go back to its own host, e.g.
 * virtio-balloon free page reporting), each first touch then costs a 2 MiB page that the host
 * zeroes and may compact for, and a guest touches its RAM scattered: the boot to sshd was about
 * 10% longer (README, "Boot snapshots"). PR_SET_THP_DISABLE is kept across execve(2), so the
 * flag is set here and the program is exec'd in place: same pid, same stdio, same signals.
 *
 * Built by scripts/build-qemu.mjs into the QEMU build's bin/ beside qemu-system-x86_64.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: hilbox-no-thp PROGRAM [ARG...]\n");
        return 2;
    }
    /*
     * EINVAL: a kernel built without THP (or older than 3.15) has none to disable. Any other
     * failure is reported, and the program still runs: huge pages are a speed matter only.
     */
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0 && errno != EINVAL) {
        fprintf(stderr, "hilbox-no-thp: prctl(PR_SET_THP_DISABLE): %s (running %s with huge pages)\n",
                strerror(errno), argv[1]);
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "hilbox-no-thp: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
