#!/usr/bin/perl

# Story: a notify receiver that hangs (reads the request, never answers)
# does not slow a rollback.  The same rollback twice on one stack: the
# canary turns bad (every canary response a 500) at the 20% stage, first
# with a plan without notify, then, after a reset, with a plan whose
# receiver hangs.  The second time the fault is switched on just after
# the receiver took a request it holds: the sidecar's delivery is in
# flight across the whole rollback.
#
# The claim is "delivery never delays a decision".  What proves it
# without a race: the rollback (weight 0 in Redis) is written while that
# request is still held open, i.e. the sidecar decided and wrote with a
# delivery outstanding, which a loop that waited for deliveries could
# not (the sidecar gives a request 10s).  The two times from fault to
# weight 0 are printed; the one with the hanging receiver may not be
# worse by more than the plan's interval plus 2s of noise (a loop that
# waited would be up to 10s worse).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);
use NotifyReceiver;

my $s = SidecarTest->new(name => 'notify-hang', canary_fault => 100);
$s->start;

my $rx = NotifyReceiver->new($s->t, 'hang')->start;
$rx->mode('hang');

$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan();
$plan->{stages}[2]{hold} = '5m';        # stay at 20%

my $without = _rollback('sidecar-a', $plan, sub { 1 });
$s->kill_sidecar('sidecar-a');

# again, with the hanging receiver, once the bad responses left the
# window (5s)
$s->fault('fault_canary', 0);
sleep 6;
note $s->ctl('reset', 'api', '--reason', 'the same rollback again');

$plan->{notify} = [{ url => $rx->url, format => 'json' }];

my ($held, $zero);

my $with = _rollback('sidecar-b', $plan, sub {
    # a request the receiver has just taken and holds
    my @r = $rx->requests;
    return 0 unless @r && !$r[-1]{closed_at} && $r[-1]{at} > time - 1;
    $held = $r[-1];
    return 1;
}, \$zero);

diag sprintf 'fault to weight 0: %.2fs without notify, %.2fs with a '
             . 'receiver that hangs', $without, $with;

ok $held, 'a delivery was in flight when the canary went bad';

# it is closed at the sidecar's timeout of 10s, after the rollback
$s->wait_for(sub {
    my ($r) = grep { $_->{at} == $held->{at} } $rx->requests;
    $held = $r if $r && $r->{closed_at};
    $held->{closed_at};
}, 15, 'the sidecar gave up the held request at its timeout');

cmp_ok $zero, '<', $held->{closed_at} // time,
    'weight 0 was written while the delivery was held open';
cmp_ok $held->{closed_at} // 0, '>=', $held->{at} + 9,
    sprintf 'the held request lasted its timeout (%.1fs)',
            ($held->{closed_at} // 0) - $held->{at};
cmp_ok $with, '<=', $without + 0.25 + 2,
    'not slower than without notify by more than the interval and noise';

is $s->hget('state'), 'rolled_back', 'rolled back';

my $log = $s->sidecar_log('sidecar-b');
my %failed;
$failed{$_}++ for $log =~ /receipt (\S+) \(\w+\) not delivered: Timeout/g;
ok %failed, 'the timeout is logged';
is_deeply [grep { $failed{$_} > 1 } keys %failed], [],
    'once per message, not per attempt';

$s->finish;

done_testing;


# starts a sidecar with the plan, waits for the 20% stage and for
# $ready, switches the fault on; the seconds to weight 0
sub _rollback {
    my ($id, $plan, $ready, $zero_ref) = @_;

    $s->sidecar(id => $id, plan => $plan);

    $s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent'
                       && $s->hget('weight') eq '20' }, 30,
                 "$id: at the 20% stage")
        or $s->show_log($id);

    # the same start for both: the window (5s) full of the stage's good
    # responses, which the bad ones must outweigh
    sleep 6;

    $s->wait_for($ready, 15, "$id: ready") or $s->show_log($id);

    my $on = $s->fault('fault_canary', 1);
    my $zero;

    $s->wait_for(sub { $s->hget('weight') eq '0' and $zero = time }, 30,
                 "$id: weight 0")
        or $s->show_log($id);

    $$zero_ref = $zero if $zero_ref;

    is $s->hget('state'), 'rolled_back', "$id: rolled back";

    return ($zero // time) - $on;
}
