#!/usr/bin/perl

# Story: a shadow stage against an unlucky fleet (issue 20, "The
# sidecar"; review of the shadow stage).
#
# - fleet mode, a matching canary, and beside the real nginx a node whose
#   record's "shadow" is not the module's: "compared" growing, no
#   "matched".  Read as zeros, that was every comparison a mismatch: the
#   good canary was rolled back on one bad record.  The record is
#   ignored with one log line naming the field, and the canary promoted
#   on the real nginx's comparisons.
# - nginx.conf's canary_split without a "shadow" directive: the Redis
#   field does nothing, nothing is compared, the stage holds; the hold
#   says why (not only "compared 0").
# - stable answers 500 for a fifth of the requests, the canary 200 with
#   stable's body: nginx counted status mismatches, stable's failures;
#   at weight 0 no outage is seen (the canary has no request).  They
#   were the canary's: a good canary rolled back.  Now nginx does not
#   compare a pair whose stable answer is a 5xx (skipped.stable_error):
#   no status mismatch, promoted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use POSIX qw(_exit);
use Time::HiRes qw(sleep);
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


# ---- fleet mode: a node record whose shadow has no "matched" --------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-liar', nodes => 1,
                             canary_body => 'stable st',
                             split_conf => 'shadow 0;');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);

    my $key = $s->key;
    my $liar = fork // die "fork: $!";

    if ($liar == 0) {
        # the real node's record, as "liar", its shadow without matched
        my $n = 0;

        $SIG{TERM} = sub { _exit(0) };

        for (1 .. 600) {
            my $rec = $s->redis('GET', "$key:node:web-1");
            my $r = eval { decode_json($rec) };

            if ($r) {
                $n += 50;
                $r->{node} = 'liar';
                $r->{instance} = "liar.$$";
                $r->{shadow} = { requests => $n, compared => $n };
                my ($sec, $us) = $s->redis('TIME');
                $s->redis('SET', "$key:node:liar", encode_json($r),
                          'PX', 5000);
                $s->redis('ZADD', "$key:nodes",
                          int($sec * 1000 + $us / 1000) + 5000, 'liar');
            }

            sleep 0.2;
        }

        _exit(0);
    }

    $s->sidecar(plan => shadow_plan(), fleet => 1);

    $s->wait_for(sub { $s->hget('weight') eq '50'
                       || $s->hget('state') =~ /^(complete|rolled_back)$/ },
                 60, 'the shadow stage is decided')
        or $s->show_log;

    kill 'TERM', $liar;
    waitpid $liar, 0;

    isnt $s->hget('state'), 'rolled_back',
        'the matching canary is not rolled back on the bad record';
    my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
                 $s->receipts;
    ok $done, 'the shadow stage was promoted';
    my $sh = $done ? $done->{evidence}{shadow} : {};
    cmp_ok $sh->{compared} // 0, '>=', 40,
        'on at least shadow_min_compared comparisons';
    is $sh->{matched}, $sh->{compared}, 'all matched (the real nginx\'s)';

    my @lines = grep { /node liar: .*shadow/ }
                split /\n/, $s->sidecar_log('sidecar-a');
    is scalar @lines, 1, 'one log line for the bad record'
        or diag join "\n", @lines;
    like $lines[0] // '', qr/"shadow": matched is not a count.*ignored/,
        'it names the field';

    check_schema($s, 'liar');
    $s->finish;
}


# ---- no "shadow" directive in nginx.conf: the hold says why ----------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-noconf',
                             canary_body => 'stable st');
    $s->start;
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    $s->sidecar(plan => shadow_plan());

    $s->wait_for(sub { $s->sidecar_log('sidecar-a')
                       =~ /no nginx reports a shadow/ }, 30,
                 'the hold says that no nginx reports a shadow')
        or $s->show_log;

    like $s->sidecar_log('sidecar-a'),
        qr/needs a "shadow" directive, e.g. shadow 0;/,
        'and what nginx.conf needs';
    is $s->hget('weight'), '0', 'held at weight 0';
    is $s->hget('state'), 'running', 'running, not promoted';
    my @ops = $s->operations;
    ok !(grep { $_ eq 'canary_phase_complete' } @ops), 'no promotion';

    $s->finish;
}


# ---- stable fails, the canary answers: stable's fault ----------------------

{
    my $s = SidecarTest->new(name => 'sidecar-shadow-stable5xx',
                             canary_body => 'stable st', stable_fault => 20,
                             split_conf => 'shadow 0;');
    $s->start;
    $s->fault('fault_stable', 1);
    $s->traffic(clients => 2, rate => 80, pinned_share => 0);
    $s->sidecar(plan => shadow_plan());

    $s->wait_for(sub { $s->hget('weight') eq '50'
                       || $s->hget('state') =~ /^(complete|rolled_back)$/ },
                 60, 'stable 5xx: the shadow stage is decided')
        or $s->show_log;

    isnt $s->hget('state'), 'rolled_back',
        'stable\'s 500s against the canary\'s 200s: not rolled back';
    my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
                 $s->receipts;
    ok $done, 'the shadow stage was promoted';
    my $sh = $done ? $done->{evidence}{shadow} : {};
    # nginx leaves stable's 5xx out: not compared, skipped.stable_error
    is $sh->{mismatched}{status}, 0, 'receipt: no status mismatch'
        or diag explain $sh;
    ok !exists $sh->{stable_5xx_excused}, 'receipt: no excuse estimate';
    cmp_ok $sh->{skipped} // 0, '>', 0, 'receipt: pairs skipped';
    my $r = $s->t->get($s->port, '/canary_status?format=json');
    my $st = decode_json($r->{content})->{splits}{api}{shadow};
    cmp_ok $st->{skipped}{stable_error} // 0, '>', 0,
        'nginx: stable\'s 5xx in skipped.stable_error' or diag explain $st;
    is $st->{mismatched}{status}, 0, 'nginx: no status mismatch';
    cmp_ok $st->{compared}, '>', 0, 'nginx: the others compared';
    # (a body cut short under load is rare, and no concern here)
    cmp_ok $sh->{mismatched}{body} // 0, '<=', ($sh->{compared} // 0) / 100,
        'hardly a body mismatch' or diag explain $sh;
    is $sh->{status}, 'PASS', 'shadow check PASS';

    check_schema($s, 'stable5xx');
    $s->finish;
}

done_testing;
