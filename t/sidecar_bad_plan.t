#!/usr/bin/perl

# Story: an operator starts canary-sidecar with a broken plan.  It refuses
# to start (exit 2) with a message that names the problem and where it
# is, before it touches Redis: no connection is made, no key written.
# A broken command line is refused the same way.  --dry-run --once with a
# good plan connects and decides, but writes nothing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SidecarTest;

my $s = SidecarTest->new(name => 'bad-plan');
$s->t->redis_start;

sub stage {
    my ($n, $w, $h) = @_;
    return qq({"name": "$n", "weight": $w, "hold": $h});
}

my $ok = stage('a', 0, '"1s"') . ', ' . stage('b', 50, '"1s"');

my @bad = (
    ['not JSON', qq({"stages": [\n  ) . stage('a', 5, '"1s"') . qq(,\n]}),
     qr/not JSON: line 3, column 1/],
    ['missing stages', '{"interval": "1s"}', qr/"stages" is missing/],
    ['empty stages', '{"stages": []}', qr/"stages" is empty/],
    ['weights not increasing',
     '{"stages": [' . stage('a', 20, '"1s"') . ', ' . stage('b', 5, '"1s"')
     . ']}', qr/stages\[1\]\.weight 5 is not above stages\[0\]\.weight 20/],
    ['weight 150', '{"stages": [' . stage('a', 150, '"1s"') . ']}',
     qr/stages\[0\]\.weight: 150 is not a percent 0 to 100/],
    ['negative weight', '{"stages": [' . stage('a', -1, '"1s"') . ']}',
     qr/stages\[0\]\.weight: -1 is not a percent/],
    ['unknown field in a stage',
     '{"stages": [' . stage('a', 0, '"1s"')
     . ', {"name": "b", "weight": 5, "hold": "1s", "wieght": 9}]}',
     qr/unknown field "wieght" in stages\[1\]/],
    ['unknown field at the top', "{\"stages\": [$ok], \"roll_back\": true}",
     qr/unknown field "roll_back" in the top level/],
    ['unknown field in slo', "{\"stages\": [$ok], \"slo\": {\"p99\": 1}}",
     qr/unknown field "p99" in slo/],
    ['bad hold', '{"stages": [' . stage('a', 5, '"30 minutes"') . ']}',
     qr/stages\[0\]\.hold: "30 minutes" is not a duration/],
    ['bad interval', "{\"stages\": [$ok], \"interval\": \"fast\"}",
     qr/interval: "fast" is not a duration/],
    ['window over 60s', "{\"stages\": [$ok], \"window\": \"5m\"}",
     qr/window: 5m is out of range 1s to 60s/],
    # as the plan wrote it: 90s, not 1m30s
    ['window of 90s', "{\"stages\": [$ok], \"window\": \"90s\"}",
     qr/window: 90s is out of range 1s to 60s$/m],
    ['bad on_violation', "{\"stages\": [$ok], \"on_violation\": \"alert\"}",
     qr/on_violation: "alert" is not "rollback" or "pause"/],
    ['bad stage slo limit', '{"stages": [' . stage('a', 5, '"1s"')
     . ', {"name": "b", "weight": 9, "hold": "1s",'
     . ' "slo": {"latency_p95_max_ms": -3}}]}',
     qr/stages\[1\]\.slo\.latency_p95_max_ms: -3 is out of range/],
    ['unknown trigger', "{\"stages\": [$ok], \"triggers\":"
     . ' {"latency_p90": {"act": "instant"}}}',
     qr/triggers: unknown check "latency_p90"/],
    ['rollback steps not down to 0', "{\"stages\": [$ok], \"rollback\":"
     . ' {"steps": [20, 5]}}',
     qr/rollback\.steps\[1\]: 5; the last step is 0/],
    # a shadow stage (issue 20): shadow as weight, its SLO's fields
    ['shadow 150', '{"stages": [{"name": "s", "weight": 0, "shadow": 150,'
     . ' "hold": "1s"}]}',
     qr/stages\[0\]\.shadow: 150 is not a percent 0 to 100/],
    ['negative shadow', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": -1, "hold": "1s"}]}',
     qr/stages\[0\]\.shadow: -1 is not a percent 0 to 100/],
    ['shadow 1.234', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": 1.234, "hold": "1s"}]}',
     qr/stages\[0\]\.shadow: 1\.234 has more than two decimals/],
    ['shadow a string', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": "10%", "hold": "1s"}]}',
     qr/stages\[0\]\.shadow is not a number/],
    ['shadow_match_min 0', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": 10, "hold": "1s", "slo": {"shadow_match_min": 0}}]}',
     qr/stages\[0\]\.slo\.shadow_match_min \(percent\): 0 is out of range (?#
       )above 0 to 100/],
    ['shadow_match_min 100.5', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": 10, "hold": "1s", "slo": {"shadow_match_min": 100.5}}]}',
     qr/stages\[0\]\.slo\.shadow_match_min \(percent\): 100\.5 is out of (?#
       )range/],
    ['shadow_min_compared 2.5', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": 10, "hold": "1s", "slo": {"shadow_min_compared": 2.5}}]}',
     qr/stages\[0\]\.slo\.shadow_min_compared: a whole number/],
    ['shadow_min_compared 0', '{"stages": [{"name": "s", "weight": 0,'
     . ' "shadow": 10, "hold": "1s", "slo": {"shadow_min_compared": 0}}]}',
     qr/stages\[0\]\.slo\.shadow_min_compared: 0 is out of range 1 to/],
    ['shadow_match_min where nothing is mirrored', '{"stages": ['
     . '{"name": "s", "weight": 0, "shadow": 10, "hold": "1s"},'
     . ' {"name": "b", "weight": 5, "hold": "1s",'
     . ' "slo": {"shadow_match_min": 99}}]}',
     qr/stages\[1\]\.slo\.shadow_match_min: stages\[1\] mirrors nothing/],
    ['shadow_match_min in a plan without shadow',
     "{\"stages\": [$ok], \"slo\": {\"shadow_match_min\": 99.9}}",
     qr/slo\.shadow_match_min: no stage says "shadow"/],
    ['shadow_match_min at weight 100', '{"stages": ['
     . '{"name": "s", "weight": 0, "hold": "1s"},'
     . ' {"name": "b", "weight": 100, "shadow": 10, "hold": "0s",'
     . ' "slo": {"shadow_match_min": 99}}]}',
     qr/stages\[1\]\.slo\.shadow_match_min: stages\[1\] has weight 100: (?#
       )stable serves nothing to mirror/],
);

sub connections {
    my ($n) = $s->redis('INFO', 'stats')
              =~ /total_connections_received:(\d+)/;
    return $n;
}

my $before = connections();

for my $case (@bad) {
    my ($name, $text, $want) = @$case;

    my $file = $s->write_plan($text, 'bad');
    my ($rc, $out) = $s->run_sidecar($s->sidecar_args(plan_file => $file));

    is $rc, 2, "$name: exit 2";
    like $out, qr/^canary-sidecar: bad plan: \Q$file\E: /,
        "$name: names the file";
    like $out, $want, "$name: names the problem";
}

my ($rc, $out) = $s->run_sidecar($s->sidecar_args(
    plan_file => $s->prefix . '/no-such-plan.json'));
is $rc, 2, 'missing plan file: exit 2';
like $out, qr/no-such-plan\.json: No such file or directory/, 'says so';

($rc, $out) = $s->run_sidecar($SidecarTest::SIDECAR, '--redis',
                              '127.0.0.1:' . $s->t->redis_port,
                              '--status', $s->status_url);
is $rc, 2, 'no --split: exit 2';
like $out, qr/--split .* required/, 'says what is missing';

($rc, $out) = $s->run_sidecar($s->sidecar_args(args => ['--split',
                                                         'a b']));
is $rc, 2, 'bad split name: exit 2';

($rc, $out) = $s->run_sidecar($s->sidecar_args(args => ['--bogus']));
is $rc, 2, 'unknown option: exit 2';
like $out, qr/unknown option --bogus/, 'names it';

($rc, $out) = $s->run_sidecar($s->sidecar_args(args => ['--log-every',
                                                         '1 minute']));
is $rc, 2, 'bad --log-every: exit 2';
like $out, qr/invalid --log-every "1 minute": a duration \(30s, 5m/,
    'echoes the value and the syntax';

($rc, $out) = $s->run_sidecar($s->sidecar_args(args => ['--status',
                                                         'ftp://x/']));
is $rc, 2, 'a status URL that is not http: exit 2';

is connections(), $before + 1,
    'Redis was never contacted (only this test\'s own redis-cli)';
is $s->redis('DBSIZE'), '0', 'no key in Redis';

# no nginx answers for the split: a rollout never starts blind, and
# --once says it could not decide
($rc, $out) = $s->run_sidecar($s->sidecar_args(
    plan => SidecarTest::fast_plan(), args => ['--once']));
is $rc, 1, 'once, no nginx answering: exit 1';
like $out, qr/api: not starting: no nginx answered/, 'says why';
is $s->redis('DBSIZE'), '0', 'no nginx answering: nothing written';

# the nginx now
$s->t->redis_stop;
$s->start;

# a good plan, dry run: it connects and decides, and writes nothing
($rc, $out) = $s->run_sidecar($s->sidecar_args(
    plan => SidecarTest::fast_plan(), args => ['--dry-run', '--once']));
is $rc, 0, 'dry run: exit 0';
like $out, qr/\[dry run\] api: start: stage canary \(0%\)/,
    'dry run: logs the decision it would make';
# nginx's own records of itself (the fleet) are not the sidecar's
is join(' ', grep { !/:nodes?\b/ } split /\n/, $s->redis('KEYS', '*')), '',
    'dry run: still no key in Redis but nginx\'s fleet records';

# --once for real: one step (the start), then exit
($rc, $out) = $s->run_sidecar($s->sidecar_args(
    plan => SidecarTest::fast_plan(), args => ['--once']));
is $rc, 0, 'once: exit 0';
is $s->hget('state'), 'running', 'once: started the rollout';
is_deeply [$s->operations], ['rollout_started'], 'once: one receipt';
is $s->redis('EXISTS', $s->key . ':leader'), '0',
    'once: gave the lease up on exit';

# every run's output is checked for sanitizer reports; nginx's log too
$s->finish;

done_testing;
