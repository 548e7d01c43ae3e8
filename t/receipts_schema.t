#!/usr/bin/perl

# Story: every writer's receipt has one shape, docs/receipt.schema.json
# (README, "Receipts").  On the real stack (Redis, nginx with the guard,
# canary-sidecar), canary-ctl makes each of its nine operations, the
# sidecar a rollout that is promoted and then rolled back (the canary
# gets slow: the guard, which watches errors, does not see it), and the
# guard trips (the canary fails).  Every receipt in the stream, and every
# line of the sidecar's receipts file, is then checked against the
# schema: a version-4 receipt_id, a timestamp "YYYY-MM-DDTHH:MM:SSZ",
# numbers as JSON numbers, null for what was not there, the fields of
# each operation.  The sidecar's plan names a release: its receipts carry it,
# and so do canary-ctl's while the sidecar's state has it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use ReceiptSchema;
use SidecarTest qw(fast_plan);

my $schema = ReceiptSchema->load;

my $s = SidecarTest->new(name => 'receipts-schema', nodes => 1,
                         canary_fault => 20, slow_ms => 200,
                         guard => 'error_rate=2 min_requests=20 window=2s');
$s->start;
$s->t->allow_log(qr/canary guard/);
$s->traffic(clients => 4, rate => 60);

$s->wait_for(sub { $s->redis('ZCARD', $s->key . ':nodes') >= 1 }, 10,
             'nginx reports the split');


# ---- canary-ctl: each of its operations -----------------------------------

my @ctl = (
    [ 'set-weight', 'api', '12.5', '--reason', 'a first step' ],
    [ 'set-weight', 'api', '0.05' ],
    [ 'disable', 'api' ],
    [ 'enable', 'api', '--reason', 'back on' ],
    [ 'pin', 'api', 'canary', 't1', 't2' ],
    [ 'pin', 'api', 'stable', 't2' ],
    [ 'unpin', 'api', 't1', 't2' ],
    [ 'pause', 'api' ],
    [ 'resume', 'api' ],
    [ 'rollback', 'api', '--reason', 'by hand' ],
    [ 'reset', 'api', '--reason', 'for the sidecar' ],
);

for my $args (@ctl) {
    my $out = $s->ctl(@$args);
    like $out, qr/^\S+ api\b.*: .*\(generation \d+\)$/m, "canary-ctl @$args"
        or diag $out;
}


# ---- canary-sidecar: promoted, then rolled back on latency ----------------

my $plan = fast_plan(release => { stable => 'v1.2.2', canary => 'v1.2.3' });
$plan->{stages}[2]{hold} = '1m';    # stay at 20%

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'the sidecar promotes to 20%')
    or $s->show_log;

# canary-ctl while the sidecar runs: the rollout's fields from its state
like $s->ctl('pin', 'api', 'stable', 't3'), qr/^pin api stable: /m,
    'canary-ctl pin during the rollout';

$s->fault('slow_canary', 1);

$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 30,
             'the sidecar rolls back the slow canary')
    or $s->show_log;

$s->fault('slow_canary', 0);
$s->kill_sidecar('a');


# ---- the guard: trips on the canary's errors ------------------------------

like $s->ctl('reset', 'api', '--reason', 'for the guard'),
    qr/^reset api: /m, 'reset for the guard';
like $s->ctl('set-weight', 'api', '50'), qr/^weight api: \S+ -> 50% /m,
    'weight 50';

sleep 1;
$s->fault('fault_canary', 1);

$s->wait_for(sub { $s->hget('state') eq 'guard_tripped' }, 20,
             'the guard trips');

$s->fault('fault_canary', 0);


# ---- every receipt, against the schema ------------------------------------

my @l = $s->redis('XRANGE', $s->key . ':receipts', '-', '+');
my (%ops, %by);

for (my $i = 0; $i + 2 < @l + 0; $i += 3) {
    my $text = $l[$i + 2];
    my $r = eval { JSON::PP->new->decode($text) } // {};
    my $op = $r->{operation} // '?';

    $ops{$op}++;
    $by{ $op eq 'guard_tripped' ? 'guard'
         : exists $r->{previous} ? 'canary-ctl' : 'sidecar' }++;

    my @e = $schema->validate($text);
    ok !@e, "receipt $l[$i] ($op) conforms to the schema"
        or diag join("\n", @e, $text);
}

for my $op (qw(weight_set split_enabled split_disabled rollout_paused
               rollout_resumed rollback_executed split_reset tenants_pinned
               tenants_unpinned guard_tripped rollout_started
               canary_phase_complete traffic_promoted sli_violation_detected))
{
    ok $ops{$op}, "a receipt $op was checked";
}

is_deeply [ sort keys %by ], [qw(canary-ctl guard sidecar)],
    'receipts of all three writers were checked';

# the release: the sidecar's always, canary-ctl's while a sidecar runs
my %release;
for (my $i = 0; $i + 2 < @l + 0; $i += 3) {
    my $r = eval { JSON::PP->new->decode($l[$i + 2]) } // {};
    my $who = exists $r->{previous} ? 'canary-ctl' : $r->{operation}
              && $r->{operation} eq 'guard_tripped' ? 'guard' : 'sidecar';
    $release{$who}{ $r->{release} ? 'set' : 'null' }++;
}
ok $release{sidecar}{set} && !$release{sidecar}{null},
    'every sidecar receipt names the plan\'s release';
ok $release{'canary-ctl'}{set} && $release{'canary-ctl'}{null},
    'canary-ctl\'s: with a sidecar\'s state, and null before there was one';

# the file the sidecar appends (--receipts), the same receipts
my $file = $s->prefix . '/receipts.jsonl';
my @bad;
my $n = 0;

open my $fh, '<', $file or die "$file: $!";
while (my $line = <$fh>) {
    chomp $line;
    $n++;
    push @bad, join("\n", $schema->validate($line), $line)
        if $schema->validate($line);
}
close $fh;

ok $n >= 5 && !@bad, "each of the $n lines of the sidecar's receipts file "
                     . 'conforms'
    or diag join "\n", @bad;

$s->finish;

done_testing;
