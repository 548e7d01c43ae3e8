#!/usr/bin/perl

# Story: a log that a person reads.  canary-sidecar logs a decision when
# it says something new, and while nothing changes one summary line
# every --log-every (2s here), not a line every interval (250ms): with no
# traffic the first stage holds for "too little traffic" step after step;
# that is said once, then summed up.  When traffic comes, the new reason
# is logged at once.  The plan's durations are echoed as it wrote them:
# violation_for "90s" and a hold of "90s" are 90s, not 1m30s.  A dry run
# whose Redis restarts between two steps says it answers again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'log-every');
$s->start;

my $plan = fast_plan(violation_for => '90s');
$plan->{stages}[0]{hold} = '90s';

$s->sidecar(plan => $plan, args => ['--log-every', '2s']);

my $hold = qr/^(\S+Z) api stage canary \(0%\): hold: too little traffic/m;

$s->wait_for(sub { $s->sidecar_log =~ $hold }, 10,
             'the first hold is logged at once')
    or $s->show_log;

# a summary 2s later, and no line for the steps in between
$s->wait_for(sub { $s->sidecar_log =~ /nothing new\)$/m }, 10,
             'a summary after --log-every')
    or $s->show_log;

my $log = $s->sidecar_log;
my @lines = split /\n/, $log;

like $lines[0], qr/interval 250ms, window 5s, violation_for 90s, /,
    'the startup line echoes the plan\'s durations as written';
like $lines[0], qr/a summary line every 2s while nothing changes$/,
    'and says how often a summary comes';

my @holds = grep { /api stage canary \(0%\): hold: too little/ } @lines;
my @said = grep { !/\(summary: / } @holds;
my @summaries = grep { /\(summary: / } @holds;

is scalar(@said), 1, 'the same hold is said once, not every interval'
    or diag join "\n", @holds;
is scalar(@summaries), 1, 'then one summary' or diag join "\n", @holds;

my ($steps) = ($summaries[0] // '') =~ /\(summary: (\d+) steps? since/;
cmp_ok $steps // 0, '>=', 3,
    'the summary stands for the steps not logged (250ms each, over 2s)';

my ($t1) = $said[0] =~ /^\S+T(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z/
           ? $1 * 3600 + $2 * 60 + $3 : ();
my ($t2) = ($summaries[0] // '') =~ /^\S+T(\d\d):(\d\d):(\d\d(?:\.\d+)?)Z/
           ? $1 * 3600 + $2 * 60 + $3 : ();
cmp_ok(($t2 // 0) - ($t1 // 0), '>=', 1.9,
       'the summary comes --log-every after the line before');

like $log, qr/api: sidecar-a is the leader \(lease \S+, 3s\)/,
    'the lease in the same duration format';
unlike $log, qr/\d\.0s\b/, 'no "3.0s" beside "3s"';

# traffic: the reason changes, and the new line comes at once
my $mark = length $log;
$s->traffic(clients => 2, rate => 100, pinned_share => 0.5);

$s->wait_for(sub { substr($s->sidecar_log, $mark)
                   =~ m{api stage canary \(0%\): hold \S+/90s; canary err} },
             20, 'a new reason is logged when it comes, hold X/90s')
    or $s->show_log;

my $after = substr $s->sidecar_log, $mark;
unlike $after, qr{/1m30s}, 'the hold is echoed as written, not 1m30s';

# Redis restarted between two steps of a dry run (no lease to renew):
# the step after fails on the dead connection and says so; the one after
# that answers again, and says that too, not a minute later in a summary
$s->kill_sidecar('sidecar-a');
my $dry = fast_plan(interval => '3s');
$s->sidecar(id => 'dry', plan => $dry,
            args => ['--dry-run', '--log-every', '6s']);
$s->wait_for(sub { $s->sidecar_log('dry') =~ /\[dry run\] api/ }, 15,
             'dry run: a first decision') or $s->show_log('dry');

my $t = $s->t;
$t->redis_stop;
$t->redis_start;

$s->wait_for(sub { $s->sidecar_log('dry') =~ /api: .*closed.*; holding$/m },
             15, 'dry run: the dead connection is said')
    or $s->show_log('dry');
$s->wait_for(sub { $s->sidecar_log('dry')
                   =~ /api: redis \S+ answers again$/m },
             15, 'and Redis answering again') or $s->show_log('dry');

# it restarted empty: the dry run goes on from memory, and says so once,
# not every step (it writes nothing back, so the loss stays)
$s->wait_for(sub { $s->sidecar_log('dry') =~ /\(summary: .*nothing new\)$/m },
             20, 'dry run: a summary after the restart')
    or $s->show_log('dry');
my @lost = grep { /Redis has lost the sidecar's state/ }
           split /\n/, $s->sidecar_log('dry');
is(scalar @lost, 1, 'the lost state is said once') or $s->show_log('dry');
unlike($lost[0] // '', qr/writing back/,
       'and not as written back: a dry run writes nothing');

$s->finish;

done_testing;
