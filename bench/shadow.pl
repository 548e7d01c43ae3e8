#!/usr/bin/perl

# bench/shadow.pl: what shadow traffic costs the proxy (issue 20).
#
#   1. CPU per request of the proxy's worker (utime + stime from
#      /proc/PID/stat over N requests) at shadow 0 (the directive absent),
#      shadow 10 and shadow 100, the origins in another nginx so that
#      their CPU is not counted; compare=body, identical bodies of 1 KB.
#   2. Memory per shadow in flight: the worker's RSS with 0 and with
#      BENCH_SHADOW_HELD shadows held by a canary that accepts and never
#      answers (timeout=60s), divided by that number.
#   3. The client's latency (wrk, keep-alive, p50/p99) without shadow and
#      at shadow 100 with a canary that answers after 2 s (timeout=5s):
#      the client must not see the canary.
#
# Core Perl and t/lib (real nginx, loopback).  Settings: BENCH_REQUESTS
# (20000), BENCH_SHADOW_HELD (60, under the 64 in flight per worker).
# Prints a small table; numbers vary with the machine: run it idle.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use IO::Socket::INET;
use POSIX qw(sysconf);
use Time::HiRes qw(sleep time);
use CanaryTest;

my $N = $ENV{BENCH_REQUESTS} || 20000;
my $HELD = $ENV{BENCH_SHADOW_HELD} || 60;
my $TICK = sysconf(POSIX::_SC_CLK_TCK()) || 100;

my $body = 'x' x 1024;

# the origins, alone in their nginx
my $o = CanaryTest->new(name => 'origins');
my ($sp, $cp) = ($o->port('stable'), $o->port('canary'));

$o->write_conf(<<"END", workers => 1);
    server { listen 127.0.0.1:$sp; location / { return 200 '$body'; } }
    server { listen 127.0.0.1:$cp; location / { return 200 '$body'; } }
END
$o->start;

my $hang = CanaryTest->new(name => 'hang')->port('hang');
my $listener = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$hang",
                                     Listen => 1024, ReuseAddr => 1)
    or die "listen: $!\n";

sub proxy {
    my ($shadow, $canary) = @_;

    my $t = CanaryTest->new(name => 'proxy shadow ' . ($shadow // 'absent'));
    my $port = $t->port('http');
    my $line = defined $shadow ? "shadow $shadow timeout=60s;" : "";

    $t->write_conf(<<"END", workers => 1);
    canary_zone canary 4m;
    upstream stable_up { server 127.0.0.1:$sp; keepalive 16; }
    upstream canary_up { server 127.0.0.1:$canary; keepalive 16; }
    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 0;
        $line
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            canary app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://\$canary_upstream;
        }
    }
END
    $t->start;

    return ($t, $port);
}

sub cpu {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or die "$pid: $!\n";
    my @f = split / /, (<$fh> =~ s/^.*\) //r);
    return ($f[11] + $f[12]) / $TICK;
}

sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or die "$pid: $!\n";
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

printf "%-12s %14s\n", 'shadow', 'CPU us/request';

for my $shadow (undef, 10, 100) {
    my ($t, $port) = proxy($shadow, $cp);
    my ($w) = $t->worker_pids;
    my @reqs = map { { path => "/r$_" } } 1 .. $N;

    $t->request_many($port, [ @reqs[0 .. 999] ], clients => 2);  # warm
    my $c0 = cpu($w);
    my $res = $t->request_many($port, \@reqs, clients => 2);
    my $c1 = cpu($w);

    my $bad = grep { $_->{status} != 200 } @$res;
    die "$bad requests failed\n" if $bad;

    printf "%-12s %14.1f\n", defined $shadow ? $shadow : 'absent',
           ($c1 - $c0) * 1e6 / $N;
    $t->stop;
}

# memory: shadows held by a canary that never answers, the RSS after
# HELD/2 of them and after HELD (the first half pays the warm-up)
{
    my ($t, $port) = proxy(100, $hang);
    my ($w) = $t->worker_pids;
    my $half = int($HELD / 2);
    my @rss;

    # one connection per request: each is answered, its shadow stays
    for my $i (1 .. $HELD) {
        my $r = $t->get($port, "/held$i");
        die "request $i: $r->{status}\n" unless $r->{status} == 200;
        next unless $i == $half || $i == $HELD;
        sleep 0.3;
        push @rss, rss_kb($w);
    }

    printf "memory per shadow in flight: %.1f KB (RSS %d -> %d KB over "
           . "%d more held)\n",
           ($rss[1] - $rss[0]) / ($HELD - $half), @rss, $HELD - $half;

    $t->allow_log(qr/./);
    $t->stop;
}

# latency: a canary that answers after 2 s, keep-alive clients
if (-x '/usr/bin/wrk') {
    my $slow = $o->port('slow');
    my $pid = fork // die "fork: $!\n";

    if ($pid == 0) {
        exec $^X, "$FindBin::Bin/../t/lib/slow_origin.pl", $slow, 2000,
             $body;
        exit 127;
    }

    sleep 1;

    printf "%-12s %10s %10s %10s\n", 'shadow', 'requests', 'p50 ms',
           'p99 ms';

    for my $shadow (undef, 100) {
        my ($t, $port) = proxy($shadow, $slow);
        my $out = `wrk -t1 -c16 -d5s --latency http://127.0.0.1:$port/ 2>&1`;
        my ($p50) = $out =~ /^\s+50%\s+([\d.]+)(us|ms|s)/m;
        my ($p99, $u99) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)/m;
        my ($u50) = $out =~ /^\s+50%\s+[\d.]+(us|ms|s)/m;
        my ($n) = $out =~ /(\d+) requests in/;
        my %f = (us => 0.001, ms => 1, s => 1000);

        printf "%-12s %10s %10.2f %10.2f\n", $shadow // 'absent', $n // '?',
               ($p50 // 0) * $f{$u50 // 'ms'}, ($p99 // 0) * $f{$u99 // 'ms'};

        $t->allow_log(qr/./);
        $t->stop;
    }

    kill 'TERM', $pid;
    waitpid $pid, 0;
}

$o->stop;
