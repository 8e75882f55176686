/*
 * preload_exec.c - the LD_PRELOAD library's handover across exec: a new
 * program image has no mapping of the rings, and reads the descriptors it
 * inherited as plain socketpairs. So before an exec every ringed socket with
 * a descriptor exec keeps (no FD_CLOEXEC) goes back to its socketpair
 * (ts_ring_off, as at fork: what the down ring holds unread goes into the
 * pair first, the doorbell bytes are taken out).
 *
 * glibc's exec variants and posix_spawn call execve inside libc, not through
 * the PLT, so each is interposed itself. A child made by vfork (or by
 * posix_spawn with file actions) may clear FD_CLOEXEC or dup2 any descriptor
 * before it execs, and it may not speak on our API connection (it runs on
 * our memory while a thread of ours may be mid-request): every ring is taken
 * back in the parent before such a child exists. vfork itself cannot be
 * wrapped by a C function (the child would return through the wrapper's frame
 * and clobber it for the parent), so on x86-64 it is a trampoline that calls
 * the handover and then jumps to libc's vfork; elsewhere it is fork.
 * A child made by raw clone(CLONE_VFORK) is not seen.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>

#include "preload_int.h"

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execv)(const char *, char *const[]);
static int (*real_execvp)(const char *, char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                               char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                                char *const[], char *const[]);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
__attribute__((visibility("hidden"))) pid_t (*real_vfork)(void);

static pthread_once_t exec_once = PTHREAD_ONCE_INIT;

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
static void exec_resolve_all(void) {
  RESOLVE(execve);
  RESOLVE(execv);
  RESOLVE(execvp);
  RESOLVE(execvpe);
  RESOLVE(fexecve);
  RESOLVE(posix_spawn);
  RESOLVE(posix_spawnp);
  RESOLVE(system);
  RESOLVE(popen);
  RESOLVE(vfork);
}
static inline void exec_resolve(void) {
  resolve();
  pthread_once(&exec_once, exec_resolve_all);
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  exec_resolve();
  rings_off_exec(0);
  return real_execve(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[]) {
  exec_resolve();
  rings_off_exec(0);
  return real_execv(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[]) {
  exec_resolve();
  rings_off_exec(0);
  return real_execvp(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  exec_resolve();
  rings_off_exec(0);
  return real_execvpe(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  exec_resolve();
  rings_off_exec(0);
  return real_fexecve(fd, argv, envp);
}

/* execl, execlp, execle: the argument list as an array (on the stack: no malloc between fork and
 * exec), then the array form, whose handover it is. */
static size_t count_args(const char *arg, va_list *ap) {
  size_t n = 1;
  if (arg)
    while (va_arg(*ap, const char *)) n++;
  return n;
}

/* argv[0..n-1] from the list, argv[n] NULL; the list's NULL is consumed (execle's envp follows it). */
static void fill_args(char **argv, size_t n, const char *arg, va_list *ap) {
  argv[0] = (char *)arg;
  for (size_t i = 1; i < n; i++) argv[i] = va_arg(*ap, char *);
  if (arg) (void)va_arg(*ap, char *);
  argv[n] = NULL;
}

EXPORT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  size_t n = count_args(arg, &ap);
  va_end(ap);
  char **argv = alloca((n + 1) * sizeof *argv);
  va_start(ap, arg);
  fill_args(argv, n, arg, &ap);
  va_end(ap);
  return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  size_t n = count_args(arg, &ap);
  va_end(ap);
  char **argv = alloca((n + 1) * sizeof *argv);
  va_start(ap, arg);
  fill_args(argv, n, arg, &ap);
  va_end(ap);
  return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  size_t n = count_args(arg, &ap);
  va_end(ap);
  char **argv = alloca((n + 1) * sizeof *argv);
  va_start(ap, arg);
  fill_args(argv, n, arg, &ap);
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}

/* glibc's posix_spawn execs in a vfork-like child: without file actions the child keeps exactly what
 * exec keeps; with them it may dup2 any descriptor first, so every ring is taken back. */
EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                       char *const argv[], char *const envp[]) {
  exec_resolve();
  rings_off_exec(fa != NULL);
  return real_posix_spawn(pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  exec_resolve();
  rings_off_exec(fa != NULL);
  return real_posix_spawnp(pid, file, fa, attr, argv, envp);
}

/* system and popen spawn /bin/sh inside libc: it inherits what exec keeps. */
EXPORT int system(const char *cmd) {
  exec_resolve();
  if (cmd) rings_off_exec(0);
  return real_system(cmd);
}

EXPORT FILE *popen(const char *cmd, const char *mode) {
  exec_resolve();
  rings_off_exec(0);
  return real_popen(cmd, mode);
}

/* vfork's handover, in the parent before the child exists (the trampoline below calls it). */
__attribute__((visibility("hidden"), used)) void tapstack_vfork_prepare(void) {
  exec_resolve();
  rings_off_exec(1);
}

#if defined(__x86_64__)
/* Called with the caller's frame untouched: the call returns before libc's vfork is jumped to, which
 * then returns to our caller directly, in both processes. endbr64 is a no-op without CET. */
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "  endbr64\n"
        "  sub $8, %rsp\n"
        "  call tapstack_vfork_prepare\n"
        "  add $8, %rsp\n"
        "  jmp *real_vfork(%rip)\n"
        ".size vfork, .-vfork\n");
#else
/* POSIX allows vfork to be fork; a C function may return twice from fork (each process has its stack). */
EXPORT pid_t vfork(void) {
  tapstack_vfork_prepare();
  return fork();
}
#endif
