/* tap_steer.h - the multi-queue TAP's steering program (tap_steer.c). */
#ifndef TAPSTACK_TAP_STEER_H
#define TAPSTACK_TAP_STEER_H

/* Load the program and attach it to the TAP of `tap_fd` (any of its queues): 0 or -errno. */
int tap_steer_attach(int tap_fd);
/* Back to tun's own flow hash: 0 or -errno. */
int tap_steer_detach(int tap_fd);

#endif
