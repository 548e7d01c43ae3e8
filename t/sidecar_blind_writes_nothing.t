#!/usr/bin/perl

# Story: canary-sidecar started with a --status that no nginx answers
# (a port nothing listens on, a path that is not canary_status) or with
# a --split the fleet does not have.  Until at least one nginx answers
# for the split it writes nothing to Redis, not even its lease: Redis'
# command statistics show no write command, and no key appears while it
# runs.  --once exits 1.  It says why, once.  A sidecar that sees the
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

# the commands Redis ran since CONFIG RESETSTAT that write
sub writes {
    my %calls = $s->redis('INFO', 'commandstats')
                =~ /^cmdstat_(\S+?):calls=(\d+)/mg;
    return join ' ', map { "$_=$calls{$_}" } grep { $WRITE{$_} } sort keys
        %calls;
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

    $s->redis('CONFIG', 'RESETSTAT');

    my ($rc, $out) = $s->run_sidecar(args('blind-once', $split, @status),
                                     '--once');
    is $rc, 1, "--once, $what: exit 1";
    like $out, qr/not starting: no nginx answered for this split/,
        "--once, $what: says why";
    is writes(), '', "--once, $what: not one write command in Redis";
    is $s->redis('DBSIZE'), '0', "--once, $what: no key";
}

# running: many steps, still nothing; then a sidecar that sees the fleet
{
    $s->redis('CONFIG', 'RESETSTAT');

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
        $keys ||= $s->redis('DBSIZE');
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
