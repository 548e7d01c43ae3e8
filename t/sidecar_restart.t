#!/usr/bin/perl

# Story: canary-sidecar is killed (SIGKILL) in the middle of a stage and
# started again.  It reads its state back from Redis and carries on where
# it was: the same stage, the hold counted from when the stage really
# started, no promotion repeated and no receipt written twice.  Killed
# again right after a promotion, the next one still follows in order.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'restart');
$s->start;
$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan();
$plan->{stages}[1]{hold} = '6s';
$plan->{stages}[2]{hold} = '3s';

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             20, 'at the 5% stage')
    or $s->show_log;

sleep 1;
my %before = %{$s->state_hash};
my @ops_before = $s->operations;

$s->kill_sidecar('sidecar-a', 'KILL');
note 'killed with SIGKILL 1s into the 6s stage';

# its lease (3s) still stands: the new process waits it out
$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             20, 'went on to 20%')
    or $s->show_log;

my %after = %{$s->state_hash};
cmp_ok $after{stage_started} - $before{stage_started}, '>=', 6000,
    'the 5% stage lasted its whole hold, counted from its start';

my $log = $s->sidecar_log;
like $log, qr/standby: sidecar-a holds the lease/,
    'the new process waited for the dead one\'s lease';
like $log, qr/stage 5_percent \(5%\): hold [\d.]+s\/6s/,
    'and found the stage it was in';

# killed again right after a promotion
$s->kill_sidecar('sidecar-a', 'KILL');
$s->sidecar(plan => $plan);

# and Redis stops answering for a while (frozen: commands time out)
$s->wait_for(sub { $s->redis('GET', $s->key . ':leader') eq 'sidecar-a' },
             10, 'the new process leads');
my ($redis) = `pgrep -f 'redis-server [0-9.]+:${\ $s->t->redis_port}( |\$)'`
              =~ /^(\d+)\n?$/;
ok $redis, 'found our redis-server';
kill 'STOP', $redis;
sleep 2.5;
kill 'CONT', $redis;

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 30,
             'reached the manual gate')
    or $s->show_log;

my @r = $s->receipts;

is_deeply [map { $_->{operation} } @r],
    [qw(rollout_started canary_phase_complete traffic_promoted
        traffic_promoted awaiting_resume)],
    'each decision once, in order, across two restarts';

is_deeply [map { $_->{generation} } @r], [1 .. 5],
    'one generation per decision';

my %ids;
$ids{$_->{receipt_id}}++ for @r;
is scalar(keys %ids), 5, 'five distinct receipts';

open my $fh, '<', $s->prefix . '/receipts.jsonl' or die;
my @lines = <$fh>;
close $fh;
is scalar(@lines), 5, 'the receipts file has each once too';

like $s->sidecar_log, qr/api: redis: \w+: timed out after 1000ms; holding,/,
    'the sidecar held and said why while Redis was away';

is $r[2]{from_stage}, '5_percent', 'promoted from 5%';
is $r[2]{to_stage}, '20_percent', 'to 20%, once';

$s->finish;

done_testing;
