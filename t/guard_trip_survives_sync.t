#!/usr/bin/perl

# Story: no interleaving of a trip and a sync re-arms the trip.
#
# A trip is one worker's compare-and-swap followed by a few more stores
# (the reason, the windows); the syncing worker may read Redis at any
# moment in between.  A first trip is written and reset; then Redis says
# a generation newer than that trip's, and no incident (set-weight 50
# after canary-ctl reset), so a guard that looks "tripped and written"
# there would re-arm.  A second trip in the middle of being made must not,
# and it is written to Redis once.
#
# The moment is made to happen rather than waited for: gdb stops the
# worker that trips right after its write of the guard's state word (a
# hardware watchpoint), the syncing worker reads Redis while it is stopped,
# then the worker goes on.  The guard must still be tripped, nothing
# re-armed it, and the trip reaches Redis.
#
# Two workers: worker 0 syncs (found by its connection to Redis), the
# other one trips.  Worker 0 is stopped (SIGSTOP) while the failures are
# sent, over one keep-alive connection to the other worker, so that the
# other worker is the one that trips.  The origins are outside this nginx
# (a stopped worker must not hold a proxied request).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

plan skip_all => 'gdb is not installed'
    unless grep { -x "$_/gdb" } split /:/, $ENV{PATH};

my $t = CanaryTest->new;
my $port = $t->port('http');
my $stable = $t->port('stable');
my $canary = $t->port('canary');
my $rport = $t->redis_start;
my $redis = "127.0.0.1:$rport";

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $stable, 0,
          "stable app_stable\n");
$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $canary, 0,
          "canary app_canary\n", 500);

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=100ms timeout=500ms;

${\ split_block('app', 'app_stable', 'app_canary', 50,
                'guard error_rate=10 min_requests=20 window=10s') }
    upstream app_stable { server 127.0.0.1:$stable; }
    upstream app_canary { server 127.0.0.1:$canary; }

${\ front_server($t) }
EOF
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

ok defined wait_until(10, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$stable") }),
    'the origin on stable listens';
ok defined wait_until(10, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$canary") }),
    'the origin on canary listens';

sub status { status_json($t)->{splits}{app} }

sub receipts {
    return scalar grep { /"operation":"guard_tripped"/ }
                       $t->redis_cli('XRANGE', 'canary:app:receipts', '-',
                                     '+');
}

# tenants of each side, 40 each
my (@tenants, %side);
for my $i (0 .. 999) {
    my $side = CanaryTest::is_canary('', "t$i", 50) ? 'canary' : 'stable';
    next if ($side{$side} // 0) >= 40;
    $side{$side}++;
    push @tenants, "t$i";
    last if @tenants == 80;
}

# ---- a first trip, written and reset ---------------------------------------

ctl_ok($redis, 'set-weight', 'app', 50);
ok defined wait_until(3, sub { status()->{weight} == 50 }), 'weight 50';

$t->get($port, '/', { 'X-Tenant-Id' => $_ }) for @tenants;
ok defined wait_until(3, sub { receipts() == 1 }),
    'a first trip, written to Redis';
ctl_ok($redis, 'reset', 'app', '--reason', 'the first trip');
ok defined wait_until(3, sub { !status()->{guard}{tripped} }), 're-armed';
ctl_ok($redis, 'set-weight', 'app', 50);

my $gen = $t->redis_cli('HGET', 'canary:app', 'generation');
ok defined wait_until(3, sub { status()->{generation} == $gen }),
    "generation $gen applied";
my $state = $t->redis_cli('HGET', 'canary:app', 'state');
unlike $state, qr/^(guard_tripped|rolled_back)$/,
    "state \"$state\": no incident";

# the next trip's window starts after the re-arm
sleep 2;

# ---- which worker syncs -----------------------------------------------------

# the workers holding a TCP connection to Redis, from /proc
sub redis_holders {
    my (%inode, %holds);

    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$fh>) {
        my @f = split;
        $inode{$f[9]} = 1
            if ($f[2] // '') =~ /:([0-9A-F]{4})$/ && hex($1) == $rport;
    }

    for my $pid ($t->worker_pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink($fd) // '';
            $holds{$pid} = 1 if $l =~ /^socket:\[(\d+)\]$/ && $inode{$1};
        }
    }

    return \%holds;
}

my ($syncer, $other);
wait_until(5, sub {
    my $holds = redis_holders();
    my %holds = %$holds;
    my @w = $t->worker_pids;
    ($syncer) = grep { $holds{$_} } @w;
    ($other) = grep { !$holds{$_} } @w;
    return $syncer && $other;
});
ok $syncer && $other, "worker $syncer syncs, worker $other does not"
    or BAIL_OUT('no syncing worker found');

# a keep-alive connection served by the worker that is to trip
my ($http, $r);
for (1 .. 50) {
    $http = HTTP::Tiny->new(keep_alive => 1, timeout => 1);
    $r = $http->get("http://127.0.0.1:$port/",
                    { headers => { 'X-Tenant-Id' => 'probe' } });
    last if ($r->{headers}{'x-worker-pid'} // '') eq $other;
}
is $r->{headers}{'x-worker-pid'}, $other,
    "a keep-alive connection to worker $other";

# ---- gdb stops that worker right after it writes the guard's state ---------

my $resume = $t->prefix . '/resume';
my ($gdb, $paused) = gdb_on_guard($t, $other,
    "shell while [ ! -e $resume ]; do sleep 0.05; done", 'delete',
    'detach');

# the syncing worker sees nothing of the failures: it cannot trip
kill 'STOP', $syncer;

my $mark = $t->log_mark;
my $sent = 0;

for my $tenant (@tenants) {
    last if -e $paused;
    my $res = $http->get("http://127.0.0.1:$port/",
                         { headers => { 'X-Tenant-Id' => $tenant } });
    last if $res->{status} == 599;
    $sent++;
}

ok defined wait_until(10, sub { -e $paused }, 0.02),
    "after $sent requests the worker trips and gdb holds it there";

# the syncing worker reads Redis (generation $gen, no incident) meanwhile
kill 'CONT', $syncer;
my $rearmed = $t->wait_for_log(qr/re-armed/, 2, $mark);

open my $fh, '>', $resume or die "$resume: $!";
close $fh;
ok defined wait_until(10, sub { waitpid($gdb, WNOHANG) == $gdb }),
    'gdb let the worker go';

is $rearmed, undef, 'no sync re-armed the trip being made'
    or diag $rearmed;
ok defined wait_until(3, sub { status()->{guard}{tripped} }),
    'the guard is tripped';
ok defined wait_until(3, sub {
        $t->redis_cli('HGET', 'canary:app', 'state') eq 'guard_tripped' }),
    'the trip is written to Redis';
cmp_ok $t->redis_cli('HGET', 'canary:app', 'generation'), '>', $gen,
    'as a newer generation';

sleep 1;
ok status()->{guard}{tripped}, 'and stays tripped';
is receipts(), 2, 'the second trip is written once';

$t->stop;

done_testing;
