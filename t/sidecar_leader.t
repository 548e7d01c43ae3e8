#!/usr/bin/perl

# Story: two canary-sidecars watch the same split.  Exactly one holds the
# lease and acts; the other stands by.  When the leader is killed
# (SIGKILL: no goodbye) the other takes over within a few seconds, reads
# the rollout's state and walks on from where it was; receipts show who
# wrote each, none twice, and the killed leader's lease is not taken
# before it expired.  A leader stopped with SIGTERM (or SIGINT) gives its
# lease up as it exits 0, and the standby takes over at its next
# interval, not when a lease would have expired.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'leader');
$s->start;
$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan();
$plan->{stages}[$_]{hold} = '3s' for 0 .. 3;

$s->sidecar(id => 'sidecar-a', plan => $plan);
sleep 0.3;
$s->sidecar(id => 'sidecar-b', plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             20, 'the rollout is under way')
    or $s->show_log('sidecar-a');

my $leader = $s->redis('GET', $s->key . ':leader');
is $leader, 'sidecar-a', 'the first one leads';

my %by;
$by{$_->{by}}++ for $s->receipts;
is_deeply [keys %by], ['sidecar-a'], 'only the leader writes';
like $s->sidecar_log('sidecar-b'), qr/standby: sidecar-a holds the lease/,
    'the other stands by';

my $killed = time;
$s->kill_sidecar('sidecar-a', 'KILL');

# what was left of a's lease when it died: b may not take it sooner (SET
# NX), and takes it at its next step after (interval 250ms)
my $pttl = $s->redis('PTTL', $s->key . ':leader') / 1000;
my $left = $pttl - (time - $killed);

my $took;
$s->wait_for(sub {
    return 0 unless $s->redis('GET', $s->key . ':leader') eq 'sidecar-b';
    $took = time - $killed;
}, 12, 'sidecar-b takes the lease') or $s->show_log('sidecar-b');

diag sprintf 'leader killed to new leader: %.2fs (%.2fs of the lease '
             . 'left)', $took // -1, $left;
cmp_ok $pttl, '>', 0, 'a killed leader leaves its lease to expire';
cmp_ok $took // 0, '>=', $left - 0.1,
    'the lease is not taken before it expired';
cmp_ok $took // 99, '<', $left + 3,
    'it is taken within seconds after (a step is 250ms)';

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             20, 'sidecar-b walks on')
    or $s->show_log('sidecar-b');

my @r = $s->receipts;
is $r[-1]{by}, 'sidecar-b', 'the promotion to 20% is sidecar-b\'s';
is $r[-1]{from_stage}, '5_percent', 'from where sidecar-a left it';
is_deeply [map { $_->{operation} } @r],
    [qw(rollout_started canary_phase_complete traffic_promoted)],
    'no decision twice';

# a graceful stop gives the lease up at once
$s->sidecar(id => 'sidecar-c', plan => $plan);
sleep 0.5;
is $s->redis('GET', $s->key . ':leader'), 'sidecar-b', 'b still leads';

my $stopped = time;
$s->kill_sidecar('sidecar-b', 'TERM');
like $s->sidecar_log('sidecar-b'), qr/sidecar-b gave up the lease/,
    'b gave the lease up';

# "at once": the moment b has exited its lease is gone (or already c's),
# not left to expire (3s)
my $after = $s->redis('GET', $s->key . ':leader');
ok $after eq '' || $after eq 'sidecar-c',
    'the lease is free when b has exited: ' . ($after || 'nobody');

my $handover;
$s->wait_for(sub {
    return 0 unless $s->redis('GET', $s->key . ':leader') eq 'sidecar-c';
    $handover = time - $stopped;
}, 5, 'sidecar-c leads') or $s->show_log('sidecar-c');
diag sprintf 'SIGTERM to new leader: %.2fs', $handover // -1;
cmp_ok $handover // 99, '<', 2.5,
    'c leads at its next step, before a lease of 3s could have expired';

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 20,
             'sidecar-c walks to the gate')
    or $s->show_log('sidecar-c');

is_deeply [map { "$_->{operation}:$_->{by}" } $s->receipts],
    [qw(rollout_started:sidecar-a canary_phase_complete:sidecar-a
        traffic_promoted:sidecar-b traffic_promoted:sidecar-c
        awaiting_resume:sidecar-c)],
    'each receipt once, by whoever led then';

# SIGINT (a Ctrl-C) is a graceful stop too: exit 0, the lease given up
$s->kill_sidecar('sidecar-c', 'INT');
like $s->sidecar_log('sidecar-c'), qr/sidecar-c gave up the lease/,
    'c gave the lease up on SIGINT';
is $s->redis('EXISTS', $s->key . ':leader'), '0', 'and the lease is free';

$s->finish;

done_testing;
