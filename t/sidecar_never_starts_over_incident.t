#!/usr/bin/perl

# Story: a canary-sidecar without any saved state meets a split that must
# not be rolled out: the guard of an nginx tripped (and Redis lost its
# data since: nginx wrote its trip back into the empty Redis), a
# rollback nobody reset, the kill switch.  It never starts a rollout over
# any of these: no receipt, no weight, the plan's tenant not pinned to
# canary, the guard stays tripped in nginx.  It holds, says why once in
# its log (not every step), and says why in its state (status "new",
# "held").  When the kill switch goes off, it starts.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'incident', canary_fault => 50,
                         guard => 'error_rate=5 min_requests=20 window=2s');
$s->start;
$s->t->allow_log(qr/canary guard|canary_redis/);
$s->traffic(clients => 3, rate => 100);

sub guard_tripped {
    my $r = $s->t->get($s->port, '/canary_status?format=json');
    my $j = eval { decode_json($r->{content}) } // {};
    return $j->{splits}{api}{guard}{tripped} ? 1 : 0;
}

sub sidecar_ops { map { $_->{operation} } grep { ($_->{by} // '') =~
                  /^sidecar-/ } $s->receipts }

# the guard trips on the canary's errors, with no sidecar around
note $s->ctl('set-weight', 'api', '50');
$s->fault('fault_canary', 1);
$s->wait_for(sub { $s->hget('state') eq 'guard_tripped' }, 20,
             'the guard trips and writes its trip');
$s->fault('fault_canary', 0);

# Redis loses everything; nginx writes its trip back
$s->redis('FLUSHALL');
$s->wait_for(sub { $s->hget('state') eq 'guard_tripped' }, 10,
             'nginx writes its trip into the empty Redis');
is $s->hget('generation'), '1', 'as generation 1 of the new data';
ok guard_tripped(), 'the guard is tripped in nginx';

my @cases = (
    [ 'guard_tripped', sub { },
      qr/not starting: the split's state is "guard_tripped"/ ],
    [ 'rolled_back', sub {
          note $s->ctl('reset', 'api', '--reason', 'guard trip seen');
          note $s->ctl('rollback', 'api', '--reason', 'not this one');
      }, qr/not starting: the split's state is "rolled_back"/ ],
    [ 'enabled=0', sub {
          note $s->ctl('reset', 'api', '--reason', 'rollback seen');
          note $s->ctl('disable', 'api');
      }, qr/not starting: the split is disabled/ ],
);

my $n = 0;

for my $case (@cases) {
    my ($what, $setup, $why) = @$case;
    my $id = 'sidecar-' . ++$n;

    $setup->();
    is $s->redis('EXISTS', $s->key . ':sidecar'), '0',
        "$what: no saved state of a sidecar";

    my $gen = $s->hget('generation');
    my $weight = $s->hget('weight');

    $s->sidecar(plan => fast_plan(), id => $id);

    # 3s: twelve steps of 250ms
    sleep 3;

    subtest "$what: the sidecar does not start" => sub {
        is_deeply [sidecar_ops()], [], 'no receipt of a sidecar';
        is $s->hget('generation'), $gen, 'the split\'s generation stands';
        is $s->hget('weight'), $weight, 'and its weight';
        is $s->redis('SISMEMBER', $s->key . ':pin:canary',
                     $SidecarTest::PINNED), '0',
            'the plan\'s tenant is not pinned to canary';
        is $s->redis('EXISTS', $s->key . ':pin:plan'), '0',
            'nor in the plan\'s set';
        is guard_tripped(), $what eq 'guard_tripped' ? 1 : 0,
            'the guard in nginx as it was';

        my @said = grep { /$why/ } split /\n/, $s->sidecar_log($id);
        is scalar(@said), 1, 'says why once in its log, not every step'
            or diag join "\n", @said[0 .. ($#said < 3 ? $#said : 3)];

        my $st = $s->state_hash;
        is $st->{status}, 'new', 'its state: status new';
        like $st->{held} // '', $why, 'and why it holds';
    };

    $s->kill_sidecar($id);
}

# the kill switch goes off: now it starts
my $id = 'sidecar-' . ++$n;
$s->sidecar(plan => fast_plan(), id => $id);
sleep 1;
note $s->ctl('enable', 'api');
$s->wait_for(sub { $s->hget('state') eq 'running' }, 10,
             'enabled again: the rollout starts')
    or $s->show_log($id);
is_deeply [sidecar_ops()], ['rollout_started'], 'rollout_started';
is $s->state_hash->{held}, '', 'its state no longer says it holds';

$s->finish;

done_testing;
