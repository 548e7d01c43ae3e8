#!/usr/bin/perl

# Story: canary-sidecar started with a --status that no nginx answers
# (a port nothing listens on, a path that is not canary_status) or with
# a --split the fleet does not have.  Until at least one nginx answers
# for the split it writes nothing to Redis, not even its lease: Redis'
# command statistics show no write command, and no key appears while it
# runs (Redis' MONITOR shows none from it).  --once exits 1.  It says why, once.  A sidecar that sees the
# fleet takes the lease meanwhile and starts the rollout: the blind one
# never stands in its way.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(_exit WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'blind');
$s->start;
$s->traffic(clients => 2, rate => 50);

my $plan = $s->write_plan(fast_plan(), 'plan');
my $rport = $s->t->redis_port;
my $dead = 'http://127.0.0.1:' . $s->t->port('nothing') . '/canary_status';
my $not_status = 'http://127.0.0.1:' . $s->port . '/';

# what writes, or prepares a write, in Redis
my %WRITE = map { $_ => 1 } qw(set setnx setex psetex getset hset hsetnx
    hmset hincrby hdel del unlink expire pexpire xadd publish eval evalsha
    sadd srem watch multi_write flushall flushdb);

# Redis' MONITOR while a case runs: every command with its client's
# address.  nginx reads Redis too (EVAL of a read-only script) and
# writes its node records (EVAL: SET, ZADD), so what counts is what
# clients other than nginx's sent.
my $monitor_log = $s->prefix . '/monitor.log';
my ($monitor, %nginx_addr);

sub watch_start {
    %nginx_addr = map { $_ => 1 }
                  $s->redis('CLIENT', 'LIST') =~ /addr=(\S+).*cmd=(?!client)/mg;
    $monitor = fork // die "fork: $!";

    if ($monitor == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $monitor_log;
        exec 'redis-cli', '-p', $rport, 'MONITOR' or _exit(127);
    }

    sleep 0.3;
}

# the write commands clients other than nginx sent since watch_start
sub writes {
    my %calls;

    sleep 0.2;
    kill 'TERM', $monitor;
    waitpid $monitor, 0;

    open my $fh, '<', $monitor_log or die "$monitor_log: $!";

    my $by = '';

    while (<$fh>) {
        my ($addr, $cmd) = /\[\d+ (\S+)\] "(\w+)"/ or next;

        # a script's calls follow its EVAL: they are its sender's
        if ($addr eq 'lua') {
            $addr = $by;
        } else {
            $by = $addr;
        }

        next if $nginx_addr{$addr};
        $calls{lc $cmd}++ if $WRITE{lc $cmd};
    }

    close $fh;

    return join ' ', map { "$_=$calls{$_}" } sort keys %calls;
}

# the keys in Redis but nginx's node records (the fleet)
sub keys_not_nginx {
    return scalar grep { length && !/:nodes$|:node:/ } $s->redis('KEYS', '*');
}

sub args {
    my ($id, $split, @status) = @_;

    return ($SidecarTest::SIDECAR, '--redis', "127.0.0.1:$rport",
            '--split', $split, (map { ('--status', $_) } @status),
            '--plan', $plan, '--id', $id);
}

my @cases = (
    [ 'a port nothing listens on', 'api', $dead ],
    [ 'a path that is not canary_status', 'api', $not_status ],
    [ 'a split the fleet does not have', 'nosuch', $s->status_url ],
    [ 'all of these', 'api', $dead, $not_status ],
);

for my $case (@cases) {
    my ($what, $split, @status) = @$case;

    watch_start();

    my ($rc, $out) = $s->run_sidecar(args('blind-once', $split, @status),
                                     '--once');
    is $rc, 1, "--once, $what: exit 1";
    like $out, qr/not starting: no nginx answered for this split/,
        "--once, $what: says why";
    is writes(), '', "--once, $what: not one write command in Redis";
    is keys_not_nginx(), 0, "--once, $what: no key (but nginx's records)";
}

# running: many steps, still nothing; then a sidecar that sees the fleet
{
    watch_start();

    my $log = $s->log_path('blind');
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec args('blind', 'api', $dead, $not_status) or _exit(127);
    }

    my $keys = 0;
    my $until = time + 3;

    while (time < $until) {
        $keys ||= keys_not_nginx();
        sleep 0.1;
    }

    is $keys, 0, 'running 3s (12 steps) blind: never a key in Redis';
    is writes(), '', 'and not one write command';

    open my $fh, '<', $log or die "$log: $!";
    my @said = grep { /not starting: no nginx answered/ } <$fh>;
    close $fh;
    is scalar(@said), 1, 'it said why once, not every step'
        or diag @said;

    $s->sidecar(plan => fast_plan());
    $s->wait_for(sub { $s->hget('state') eq 'running' }, 10,
                 'a sidecar that sees the fleet takes the lease and starts')
        or $s->show_log;
    is $s->redis('GET', $s->key . ':leader'), 'sidecar-a',
        'the lease is the seeing one\'s';

    kill 'TERM', $pid;
    waitpid $pid, 0;
    is $? >> 8, 0, 'the blind sidecar exits 0 on SIGTERM';
}

$s->finish;

done_testing;
