/*
 * preload_vfork.c HOST PORT N PYTHON APP - for preload.test.ts: connect,
 * read the first 6 of the N bytes the peer sends, wait until the rest is in
 * (FIONREAD), then vfork a child that clears FD_CLOEXEC on the socket and
 * execs `PYTHON APP drain FD HEAD` (as a vfork-based spawner does); wait
 * for it, and exit with its status. The socket is made with SOCK_CLOEXEC so
 * that only what the child does after vfork makes it inherited.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: preload_vfork HOST PORT N PYTHON APP\n");
    return 2;
  }
  long n = atol(argv[3]);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &sa.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("connect");
    return 1;
  }
  char head[7] = {0};
  if (recv(fd, head, 6, MSG_WAITALL) != 6) {
    perror("recv");
    return 1;
  }
  for (int q = 0; q < n - 6;) {
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 1000);
    if (ioctl(fd, FIONREAD, &q) < 0) {
      perror("FIONREAD");
      return 1;
    }
  }
  char fds[16];
  snprintf(fds, sizeof fds, "%d", fd);
  pid_t pid = vfork();
  if (pid == 0) {
    fcntl(fd, F_SETFD, 0);
    execl(argv[4], argv[4], argv[5], "drain", fds, head, (char *)NULL);
    _exit(127);
  }
  if (pid < 0) {
    perror("vfork");
    return 1;
  }
  int st;
  if (waitpid(pid, &st, 0) < 0) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
