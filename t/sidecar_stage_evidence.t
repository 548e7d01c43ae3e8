#!/usr/bin/perl

# Story: a stage is judged on every request since it started, summed
# over the fleet from each nginx's cumulative counters.  During one long
# stage, one of two nginx is restarted (its counters start from zero),
# the sidecar is killed and started again, and then an nginx leaves for
# good.  The stage's evidence, as the sidecar keeps it in Redis, only
# ever grows: nothing is counted negative or twice, the restarted
# sidecar goes on with the evidence it had, and the nginx that stays
# keeps adding to it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'stage-evidence', nginx => 2);
$s->start;
$s->traffic(clients => 2, rate => 100);

my $plan = fast_plan();
$plan->{stages}[1]{hold} = '120s';      # 5%: the long stage

$s->sidecar(plan => $plan);

# requests of each side in the stage's evidence, from the sidecar's state
sub evidence {
    my $e = $s->state_hash->{evidence} // '';
    my ($st) = $e =~ / s (\d+) /;
    my ($cn) = $e =~ / c (\d+) /;
    return defined $st && defined $cn ? ($st, $cn) : ();
}

my (@seen, $went_down);

sub watch {
    my ($seconds) = @_;

    my $until = time + $seconds;

    while (time < $until) {
        my @e = evidence();

        if (@e && @seen && ($e[0] < $seen[0] || $e[1] < $seen[1])) {
            $went_down = "from @seen to @e";
        }

        @seen = @e if @e;
        sleep 0.2;
    }
}

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             20, 'at the 5% stage')
    or $s->show_log;

my $started = $s->state_hash->{stage_started};

watch(3);
my @before = @seen;
cmp_ok $before[1], '>', 0, "canary requests in the evidence (@before)";

# ---- an nginx restarts: its counters start over ---------------------------

$s->stop_nginx(1);
$s->nginx(1)->start;
watch(4);

my @after = @seen;
cmp_ok $after[0], '>', $before[0], "stable evidence grew ($after[0])";
like $s->sidecar_log, qr/1 nginx restarted or got a new zone/,
    'the sidecar saw the restart';

# ---- the sidecar restarts: the evidence goes on ---------------------------

$s->kill_sidecar('sidecar-a');
my @kept = evidence();
$s->sidecar(plan => $plan, id => 'sidecar-b');

$s->wait_for(sub { $s->sidecar_log('sidecar-b') =~ /is the leader/ }, 10,
             'the new sidecar leads')
    or $s->show_log('sidecar-b');

watch(3);
cmp_ok $seen[0], '>=', $kept[0],
    "the new sidecar went on from the kept evidence (@kept -> @seen)";
is $s->state_hash->{stage_started}, $started, 'the same stage, not restarted';
unlike $s->sidecar_log('sidecar-b'), qr/start: stage/, 'no new rollout';

# ---- an nginx leaves for good --------------------------------------------

@before = @seen;
$s->stop_nginx(1);
watch(4);
cmp_ok $seen[0], '>', $before[0],
    "the nginx that stays keeps adding ($before[0] -> $seen[0])";

# two clients at 100 requests a second: a count taken negative (or twice)
# would be far more than they sent
my $secs = time - $started / 1000;
cmp_ok $seen[0] + $seen[1], '<=', 1.2 * 200 * $secs,
    sprintf 'no more than was sent in %.0fs', $secs;

ok !$went_down, 'the evidence never went down' . ($went_down
                                                  ? ": $went_down" : '');
is $s->state_hash->{stage_name}, '5_percent', 'all in one stage';

$s->finish;

done_testing;
