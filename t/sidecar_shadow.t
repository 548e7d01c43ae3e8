#!/usr/bin/perl

# Story: a rollout that starts with a shadow stage (issue 20, "The
# sidecar"; the seed 003 runbook's "shadow mode, match rate above
# 99.9%").  The plan's first stage is {"weight": 0, "shadow": 100}: no
# user reaches the canary, every request stable serves is mirrored to it
# and the two responses compared (the module's shadow, `shadow 0` in
# nginx.conf, the percent from Redis).  The sidecar writes field shadow
# with the stage's weight, judges the stage's match rate against
# shadow_match_min over at least shadow_min_compared comparisons, and:
#
# - a canary that answers as stable does (identical origins) is promoted
#   after the hold, and the next stage's write sets shadow 0;
# - a canary whose body differs is rolled back before any promotion
#   (shadow_match_percent FAIL), shadow set to 0 with the weight;
# - a plan without a shadow stage never touches the field (an operator's
#   shadow stays in force).
#
# Every receipt conforms to docs/receipt.schema.json; the decisive ones
# carry the shadow's evidence.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Compress::Zlib qw(uncompress);
use ReceiptSchema;
use SidecarTest qw(fast_plan);

my $schema = ReceiptSchema->load;

sub shadow_plan {
    return fast_plan(
        pins => [],
        stages => [
            { name => 'shadow', weight => 0, shadow => 100, hold => '2s',
              slo => { shadow_match_min => 99.9,
                       shadow_min_compared => 40 } },
            { name => '50_percent', weight => 50, hold => '1s' },
            { name => '100_percent', weight => 100, hold => '0s' },
        ],
        slo => { latency_p99_ratio_max => 3, latency_p99_min_delta_ms => 50,
                 error_rate_ratio_max => 2.0, error_rate_max => 5,
                 availability_min => 99.9, min_requests => 20 });
}

sub check_schema {
    my ($s, $what) = @_;

    for my $r ($s->redis('XRANGE', $s->key . ':receipts', '-', '+')) {
        next unless $r =~ /^\{/;
        my @e = $schema->validate($r);
        ok !@e, "$what: receipt conforms to the schema"
            or diag join("\n", @e) . "\n$r";
    }
}

# the weights and shadows the split's hash had, as the sidecar wrote them
sub watch_hash {
    my ($s, $seen) = @_;

    my $h = $s->split_hash;
    my $pair = ($h->{weight} // '') . '/' . ($h->{shadow} // '');
    push @$seen, $pair unless @$seen && $seen->[-1] eq $pair;
}


# ---- a matching canary: promoted after the hold ---------------------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-match',
                             canary_body => 'stable st',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    my $dir = $s->prefix . '/evidence';
    mkdir $dir or die "$dir: $!";
    $s->sidecar(plan => shadow_plan(), args => ['--evidence-dir', $dir]);

    my @seen;
    $s->wait_for(sub { watch_hash($s, \@seen);
                       $s->hget('state') eq 'complete' }, 60,
                 'matching canary: the rollout completes')
        or $s->show_log;
    # the last write may land between the hash's read and the state's
    watch_hash($s, \@seen);

    my @written = grep { !m{/$} } @seen;
    is $written[0], '0/100',
        'the shadow stage wrote weight 0 with shadow 100' or diag "@seen";
    is_deeply \@written, ['0/100', '50/0', '100/0'],
        'then each stage its weight with shadow 0' or diag "@seen";
    ok !(grep { m{^(50|100)/} && !m{/0$} } @seen),
        'every later stage wrote shadow 0 with its weight' or diag "@seen";
    is $s->hget('shadow'), '0', 'the shadow ended with its stage';

    my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
                 $s->receipts;
    ok $done, 'the shadow stage was left by a promotion';
    my $sh = $done->{evidence}{shadow} || {};
    cmp_ok $sh->{compared} // 0, '>=', 40,
        'its receipt: at least shadow_min_compared compared';
    is $sh->{matched}, $sh->{compared}, 'every one matched';
    is $sh->{mismatched}{body}, 0, 'no body mismatch';
    is $sh->{match_rate}, 100, 'match rate 100';
    is $sh->{threshold}, 99.9, 'threshold: shadow_match_min';
    is $sh->{status}, 'PASS', 'shadow check PASS';
    is $done->{sli_checks}{shadow_match_percent}{status}, 'PASS',
        'sli_checks.shadow_match_percent PASS';
    is $done->{to_stage}, '50_percent', 'promoted to 50_percent';

    # the evidence snapshot of that weight change has the shadow too
    my $file = "$dir/$done->{receipt_id}.json.z";
    my $snap = -f $file && eval {
        open my $fh, '<:raw', $file or die "$file: $!";
        local $/;
        decode_json(uncompress(scalar <$fh>));
    };
    ok $snap, 'the promotion\'s --evidence-dir snapshot' or diag $@;
    is_deeply $snap && $snap->{shadow}, $sh,
        'its shadow: the receipt\'s evidence.shadow';

    my ($next) = grep { $_->{operation} eq 'deployment_complete' }
                 $s->receipts;
    ok $next && !exists $next->{evidence}{shadow},
        'a stage without shadow has no shadow evidence';

    like $s->sidecar_log('sidecar-a'), qr/shadow \d+\/\d+ matched, min 99\.9%/,
        'the decision line shows the shadow';

    check_schema($s, 'match');
    $s->finish;
}


# ---- a canary whose body differs: rolled back, never promoted --------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-mismatch',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    $s->sidecar(plan => shadow_plan());

    my @seen;
    $s->wait_for(sub { watch_hash($s, \@seen);
                       $s->hget('state') eq 'rolled_back' }, 60,
                 'mismatching canary: rolled back')
        or $s->show_log;
    watch_hash($s, \@seen);

    my @written = grep { !m{/$} } @seen;
    is_deeply \@written, ['0/100', '0/0'],
        'shadow 100 at weight 0, then the rollback\'s 0 with weight 0'
        or diag "@seen";
    is $s->hget('shadow'), '0', 'the rollback set shadow 0';
    is $s->hget('weight'), '0', 'weight 0';

    my @ops = $s->operations;
    ok !(grep { $_ eq 'canary_phase_complete' || $_ eq 'traffic_promoted' }
         @ops), 'no promotion' or diag "@ops";

    my ($rb) = grep { $_->{operation} eq 'rollback_executed' }
               $s->receipts;
    ok $rb, 'a rollback receipt';
    ok((grep { $_ eq 'shadow_match_percent' } @{$rb->{failed_checks}}),
       'failed check: shadow_match_percent')
        or diag explain $rb->{failed_checks};
    my $sh = $rb->{evidence}{shadow} || {};
    cmp_ok $sh->{compared} // 0, '>=', 40, 'its evidence: compared';
    is $sh->{matched}, 0, 'none matched';
    is $sh->{mismatched}{body}, $sh->{compared}, 'all body mismatches';
    is $sh->{status}, 'FAIL', 'shadow check FAIL';
    cmp_ok $sh->{p_value}, '<', $sh->{alpha}, 'p under alpha';
    like $rb->{reason} // '', qr/shadow_match_percent 0\.000% < 99\.9%/,
        'the reason names the check and the rates';

    # the module agrees: body mismatches counted by nginx
    my $r = $s->t->get($s->port, '/canary_status?format=json');
    my $st = JSON::PP::decode_json($r->{content})->{splits}{api}{shadow};
    cmp_ok $st->{mismatched}{body}, '>=', $sh->{compared},
        'nginx counted the body mismatches the receipt has';
    is $st->{matched}, 0, 'nginx: none matched';

    check_schema($s, 'mismatch');
    $s->finish;
}


# ---- fleet mode: the nodes' records carry the shadow's counters ------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-fleet', nodes => 1,
                             canary_body => 'stable st',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    $s->sidecar(plan => shadow_plan(), fleet => 1);

    $s->wait_for(sub { $s->hget('weight') eq '50'
                       || $s->hget('state') eq 'complete' }, 60,
                 'fleet mode: the shadow stage is promoted')
        or $s->show_log;

    my $rec = $s->redis('GET', $s->key . ':node:web-1');
    my $node = eval { decode_json($rec) } || {};
    ok ref $node->{shadow} eq 'HASH'
       && $node->{shadow}{compared} > 0
       && $node->{shadow}{matched} == $node->{shadow}{compared},
        'the node record has the shadow\'s counters' or diag $rec;

    my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
                 $s->receipts;
    cmp_ok $done && $done->{evidence}{shadow}{compared} // 0, '>=', 40,
        'fleet mode: promoted on at least shadow_min_compared compared';
    is $done && $done->{evidence}{shadow}{status}, 'PASS', 'shadow PASS';

    check_schema($s, 'fleet');
    $s->finish;
}


# ---- a plan without a shadow stage leaves the field alone ------------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-none',
                             split_conf => 'shadow 0 compare=status;');
    $s->start;
    $s->redis('HSET', $s->key, 'shadow', '7');
    $s->traffic(clients => 2, rate => 80, pinned_share => 0.2);

    my $plan = fast_plan(stages => [
        { name => 'canary', weight => 0, hold => '1s' },
        { name => '20_percent', weight => 20, hold => '1s' },
        { name => '100_percent', weight => 100, hold => '0s' },
    ]);
    $plan->{slo}{min_requests} = 20;
    $s->sidecar(plan => $plan);

    $s->wait_for(sub { $s->hget('state') eq 'complete' }, 60,
                 'no shadow stage: the rollout completes')
        or $s->show_log;
    is $s->hget('shadow'), '7', 'the operator\'s shadow 7 is untouched';

    check_schema($s, 'none');
    $s->finish;
}

done_testing;
