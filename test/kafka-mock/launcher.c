/*
 * A librdkafka mock Kafka cluster for tests: one broker on loopback, the topics named on the command
 * line (`name:partitions`) created up front. Prints the bootstrap servers on one stdout line, then runs
 * until stdin closes (the parent went away) or SIGTERM/SIGINT arrives.
 *   cc -O1 -o kafka-mock launcher.c -lrdkafka
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The handle only hosts the mock cluster; keep it quiet. */
  if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) { fprintf(stderr, "%s\n", err); return 1; }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", err); return 1; }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
  if (!mc) { fprintf(stderr, "rd_kafka_mock_cluster_new failed\n"); return 1; }

  for (int i = 1; i < argc; i++) {
    char *colon = strrchr(argv[i], ':');
    int partitions = colon ? atoi(colon + 1) : 1;
    if (colon) *colon = '\0';
    if (!*argv[i] || partitions < 1) { fprintf(stderr, "bad topic spec '%s' (want name:partitions)\n", argv[i]); return 2; }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, argv[i], partitions, 1);
    if (e) { fprintf(stderr, "topic %s: %s\n", argv[i], rd_kafka_err2str(e)); return 1; }
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char buf[256];
  while (!stop) {
    struct pollfd p = { .fd = 0, .events = POLLIN };
    int n = poll(&p, 1, 500);
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) break; /* stdin closed */
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
