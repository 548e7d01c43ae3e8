#!/usr/bin/perl

# Story: the receipts of a whole rollout say which versions, where and
# how long, and keep the evidence behind each weight change.  A plan with
# "release" is walked to completion by canary-sidecar (--evidence-dir),
# an operator pins a tenant and resumes at the manual gate; then, after a
# reset, a second rollout is rolled back on the canary's errors.
#
# Every receipt, of the sidecar and of canary-ctl while a sidecar runs,
# carries the release, the stage, its duration, the stages completed, the
# rollout's elapsed time and the rollbacks; the rollback receipt when the
# violation was first confirmed, how long to the write and what failed;
# the final one a summary of the stages with the figures each was judged
# on.  Each weight change's evidence snapshot is in Redis and in the
# directory, decompresses to the figures its receipt reports (requests,
# errors, p-values, p99) and sums per nginx to the stage's; canary-ctl
# evidence prints it.  Without a sidecar's state, canary-ctl's receipts
# carry null.  A snapshot goes when the stream trims its receipt; an
# index broken by hand never fails a decision.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib qw(uncompress);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use Time::Local qw(timegm);
use ReceiptSchema;
use SidecarTest qw(fast_plan);

my $schema = ReceiptSchema->load;
my $RELEASE = { stable => 'v1.2.2', canary => 'v1.2.3' };
my @FIELDS = qw(release stage duration_at_stage_seconds stages_completed
                rollout_elapsed_seconds rollbacks_triggered);

my $s = SidecarTest->new(name => 'receipts-fields', canary_fault => 20);
$s->start;
$s->traffic(clients => 3, rate => 100);

my $dir = $s->prefix . '/evidence';
mkdir $dir or die "$dir: $!";

my $plan = fast_plan(release => $RELEASE);


# ---- a rollout to completion ---------------------------------------------

$s->sidecar(plan => $plan, args => ['--evidence-dir', $dir]);

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 40,
             'walked to the manual gate')
    or $s->show_log;

like $s->ctl('pin', 'api', 'canary', 'vip-1', '--reason', 'a try'),
    qr/^pin api canary: 1 tenant\(s\) \(generation \d+\)$/m,
    'an operator pins a tenant at the gate';
like $s->ctl('resume', 'api'), qr/^state api: \S+ -> running /m, 'and resumes';

$s->wait_for(sub { $s->hget('state') eq 'complete' }, 15, 'completed')
    or $s->show_log;

my @r = $s->receipts;

is_deeply [map { $_->{operation} } @r],
    [qw(rollout_started canary_phase_complete traffic_promoted
        traffic_promoted awaiting_resume tenants_pinned rollout_resumed
        deployment_complete)],
    'the walk, with the operator\'s two changes';

for my $r (@r) {
    my $op = $r->{operation};
    ok !(grep { !exists $r->{$_} } @FIELDS), "$op: every rollout field";
    is_deeply $r->{release}, $RELEASE, "$op: the plan's release";
    is $r->{rollbacks_triggered}, 0, "$op: no rollback";
    ok !$schema->validate(encode_json($r)), "$op: conforms to the schema"
        or diag join "\n", $schema->validate(encode_json($r));
}

my %at = map { $_->{operation} => $_ } @r;

is_deeply [map { $_->{stage} } @r],
    [qw(canary canary 5_percent 20_percent 50_percent 50_percent
        50_percent 50_percent)],
    'the stage each change was made at';
is_deeply [map { $_->{stages_completed} } @r], [0, 1, 2, 3, 3, 3, 3, 5],
    'stages completed: one more with each promotion, all five at the end';

# holds of 2s: each promotion was at its stage that long at least
for my $r (@r[1 .. 3]) {
    cmp_ok $r->{duration_at_stage_seconds}, '>=', 2,
        "$r->{operation} from $r->{stage}: 2s at the stage at least";
}

is $r[0]{duration_at_stage_seconds}, 0, 'the start: 0s at the stage';

my @el = map { $_->{rollout_elapsed_seconds} } @r;
is_deeply \@el, [sort { $a <=> $b } @el], 'rollout_elapsed_seconds grows';
cmp_ok $el[-1], '>=', 8, 'four holds of 2s at least, in all';
cmp_ok $at{tenants_pinned}{duration_at_stage_seconds}, '>=', 2,
    'canary-ctl: from the sidecar\'s state, at the stage 2s at least';

# the final receipt's summary
my $sum = $at{deployment_complete}{summary};
is_deeply [map { $_->{name} } @{$sum->{stages}}],
    [qw(canary 5_percent 20_percent 50_percent 100_percent)],
    'summary: every stage in order';
is_deeply [map { $_->{result} } @{$sum->{stages}}],
    [qw(promoted promoted promoted promoted complete)], 'and how it ended';
is $sum->{total_duration_seconds},
    $at{deployment_complete}{rollout_elapsed_seconds},
    'summary: the rollout\'s total duration';

# each stage's figures are those of the receipt that left it
my @left = (@r[1 .. 3], $r[-1]);

for my $i (0 .. 3) {
    my ($st, $rc) = ($sum->{stages}[$i], $left[$i]);
    is_deeply [$st->{requests}, $st->{errors}],
        [$rc->{requests}, $rc->{errors}],
        "summary $st->{name}: the requests and errors it was judged on";
    is $st->{p_values}{error_rate_percent},
        $rc->{sli_checks}{error_rate_percent}{p_value},
        "summary $st->{name}: the error check's p-value";
    cmp_ok $st->{duration_seconds}, '>=', 2, "summary $st->{name}: 2s+";
}


# ---- the evidence of each weight change ----------------------------------

sub evidence_json {
    my ($id) = @_;
    my $out = $s->ctl('evidence', 'api', $id, '--json');
    return (eval { decode_json($out) }, $out);
}

my @changes = grep { $_->{operation} =~ /^(rollout_started|
                     canary_phase_complete|traffic_promoted|
                     deployment_complete)$/x } @r;

is scalar(grep { defined $_->{evidence_key} } @r), scalar @changes,
    'a weight change names its evidence, nothing else does';

for my $r (@changes) {
    my $id = $r->{receipt_id};
    my $op = "$r->{operation} from $r->{stage}";

    is $r->{evidence_key}, $s->key . ":evidence:$id",
        "$op: evidence_key <prefix><split>:evidence:<receipt_id>";

    my ($e, $text) = evidence_json($id);
    ok $e, "$op: canary-ctl evidence --json decompresses it" or diag $text;
    next unless $e;

    is $e->{receipt_id}, $id, "$op: the snapshot's receipt";

    # the file, the same bytes decompressed
    my $file = "$dir/$id.json.z";
    ok -f $file, "$op: --evidence-dir file $id.json.z";
    my $raw = do { local $/; open my $fh, '<', $file; <$fh> } // '';
    my $json = uncompress($raw);
    is_deeply decode_json($json // 'null'), $e, "$op: the file holds it too";
    note sprintf '%s: snapshot %d bytes of zlib, %d of JSON', $op,
                 length $raw, length($json // '');

    next if $r->{operation} eq 'rollout_started';

    my $se = $e->{stage_evidence};

    for my $v (qw(stable canary)) {
        my $w = $se->{$v};
        my $err = $w->{errors_5xx} + $w->{upstream_errors};
        $err = $w->{requests} if $err > $w->{requests};

        is $w->{requests}, $r->{requests}{$v},
            "$op: $v requests as in the receipt ($w->{requests})";
        is $err, $r->{errors}{$v}, "$op: $v errors as in the receipt";

        my ($n, $hist) = (0, 0);
        $n += $_->{$v}{requests} for @{$e->{nodes}};
        is $n, $w->{requests}, "$op: $v requests of each nginx sum to it";

        $hist += $_->[1] for @{$w->{histogram}};
        cmp_ok $hist, '<=', $w->{requests},
            "$op: $v histogram ($hist) within its requests";
    }

    cmp_ok abs($se->{canary}{p99_ms}
               - $r->{sli_checks}{latency_p99_ms}{canary}), '<', 0.01,
        "$op: canary p99 as the latency check's";

    for my $c (keys %{$r->{sli_checks}}) {
        is $e->{checks}{$c}{p_value}, $r->{sli_checks}{$c}{p_value},
            "$op: $c p-value as in the receipt";
    }
}

# the table
my $table = $s->ctl('evidence', 'api', $at{traffic_promoted}{receipt_id});
note $table;
like $table, qr/^evidence \S+: traffic_promoted at \S+ release v1\.2\.2 -> v1\.2\.3$/m,
    'canary-ctl evidence: what, when, which release';
like $table, qr/^  all \(the stage\)\s+canary\s+\d+\s+\d+\s+[\d.-]+\s+[\d.-]+\s+[\d.-]+$/m,
    'the stage: requests, errors, p50/p95/p99 of each side';
like $table, qr/^  error_rate_percent\s+PASS\s+p=\S+/m, 'the checks with p';

my $ghost = '00000000-0000-4000-8000-000000000000';
like $s->ctl('evidence', 'api', $ghost), qr/no evidence snapshot/,
    'an unknown receipt: no snapshot';

is $s->redis('ZCARD', $s->key . ':evidence'), scalar @changes,
    'the index lists each snapshot';

$s->kill_sidecar('sidecar-a');

# the stream loses the first rollout's receipts, as MAXLEN ~ 10000 trims
# old ones: their snapshots go with the next snapshot written
$s->redis('XTRIM', $s->key . ':receipts', 'MAXLEN', '0');


# ---- a rollout rolled back -------------------------------------------------

like $s->ctl('reset', 'api', '--reason', 'again'), qr/^reset api: /m,
    'reset';

my $reset = ($s->receipts)[-1];
is $reset->{stage}, '100_percent', 'reset: the finished rollout\'s stage';
is $reset->{stages_completed}, 5, 'reset: its stages';

my $p2 = fast_plan(release => { stable => 'v1.2.3', canary => 'v1.3.0' });
$p2->{stages}[2]{hold} = '1m';    # stay at 20%

# a directory it cannot write: said once, the decisions go on
$s->sidecar(plan => $p2, id => 'sidecar-b',
            args => ['--evidence-dir', "$dir/missing"]);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'the second rollout reaches 20%')
    or $s->show_log;

is scalar(grep { $s->redis('EXISTS', $_->{evidence_key}) } @changes), 0,
    'the snapshots of the trimmed receipts are gone';
is $s->redis('ZCARD', $s->key . ':evidence'), 3,
    'the index: the second rollout\'s three (start, two promotions)';
ok -f "$dir/$changes[1]{receipt_id}.json.z",
    'the --evidence-dir files stay (the operator\'s to keep)';

# someone breaks the index: the rollback and its snapshot go on all the
# same (the snapshot's script never fails the decision's EXEC)
$s->redis('SET', $s->key . ':evidence', 'oops');

sleep 2;
$s->fault('fault_canary', 1);

$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 30,
             'rolled back on the canary\'s errors')
    or $s->show_log;

$s->fault('fault_canary', 0);

@r = $s->receipts;
my ($viol, $rb) = @r[-2, -1];

is_deeply [$viol->{operation}, $rb->{operation}],
    [qw(sli_violation_detected rollback_executed)], 'violation, rollback';
is_deeply $rb->{release}, { stable => 'v1.2.3', canary => 'v1.3.0' },
    'the second plan\'s release';
is $rb->{stage}, '20_percent', 'failed at 20%';
is $rb->{stages_completed}, 2, 'two stages completed before';
is $rb->{rollbacks_triggered}, 1, 'one rollback';
like $rb->{detected_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'detected_at, ISO 8601 Z';
ok $rb->{detected_at} le $rb->{timestamp}, 'detected before the write';
is $viol->{detected_at}, $rb->{detected_at}, 'the violation\'s receipt too';
ok grep({ $_ eq 'error_rate_percent' } @{$rb->{failed_checks}}),
    'failed_checks names error_rate_percent'
    or diag explain $rb->{failed_checks};

# violation_for 1s: the rollback waited that long after detected_at, and
# its duration is what the two timestamps (to the second) say, give or
# take the decision's own few ms
cmp_ok $rb->{rollback_duration_ms}, '>=', 1000,
    'rollback_duration_ms: violation_for (1s) at least';

sub epoch {
    my ($y, $mo, $d, $h, $mi, $sec) = $_[0] =~ /(\d+)/g;
    return timegm($sec, $mi, $h, $d, $mo - 1, $y);
}

my $between = 1000 * (epoch($rb->{timestamp}) - epoch($rb->{detected_at}));
cmp_ok abs($rb->{rollback_duration_ms} - $between), '<', 1100,
    "rollback_duration_ms $rb->{rollback_duration_ms}: detected_at to the "
    . 'write, as the timestamps say';
ok !$schema->validate(encode_json($rb)), 'conforms to the schema';

my ($e) = evidence_json($rb->{receipt_id});
is $e->{stage_evidence}{canary}{requests}, $rb->{requests}{canary},
    'the rollback\'s evidence: the canary requests it judged';
is $e->{checks}{error_rate_percent}{status}, 'FAIL', 'the failed check';
is $viol->{evidence_key}, $rb->{evidence_key},
    'both receipts of the decision name one snapshot';

ok !grep({ /not written/ } split /\n/, $s->sidecar_log('sidecar-b')),
    'an index that is no sorted set never failed a write';

my @said = grep { /--evidence-dir: / } split /\n/, $s->sidecar_log('sidecar-b');
is scalar @said, 1, 'an --evidence-dir it cannot write: logged once'
    or diag join "\n", @said;
like $said[0] // '', qr/missing.*No such file/, 'naming the problem';
ok !-e "$dir/missing", 'nothing written there';

$s->kill_sidecar('sidecar-b');


# ---- no sidecar state: null -------------------------------------------------

like $s->ctl('reset', 'api', '--reason', 'done'), qr/^reset api: /m,
    'reset deletes the sidecar\'s state';
like $s->ctl('set-weight', 'api', '0'), qr/^weight api: \S+ -> 0% /m,
    'set-weight';

my $last = ($s->receipts)[-1];
is_deeply [map { $last->{$_} } @FIELDS], [(undef) x 6],
    'canary-ctl without a sidecar state: every rollout field null';
ok !$schema->validate(encode_json($last)), 'and conforms';

$s->finish;

done_testing;
