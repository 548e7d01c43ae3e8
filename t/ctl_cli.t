#!/usr/bin/perl

# Story: an operator drives a rollout with scripts/canary-ctl against a
# real Redis, and a SUBSCRIBE client listens like every nginx does.
#
# Every subcommand writes what it says into the split's hash, raises the
# generation by exactly one, appends one receipt (valid JSON, even with
# quotes, backslashes, newlines, control characters and bytes that are
# not UTF-8 in a reason) and PUBLISHes the operation.  Every change takes
# --reason TEXT into its receipt; without one the receipt has the fields
# it always had.  "receipts" and "status" read it back.  --help works on
# every subcommand.  After a rollback or a guard trip, set-weight, pin,
# pause and resume exit 2 and write nothing until "reset", which removes
# the plan's pins (the sidecar's, in :pin:plan) and the sidecar's saved
# rollout, and lists the operator's pins that stay.  Bad arguments (bad
# global options too) print a usage line and exit 2 before any
# connection to Redis (its keys, their DUMPs and its connection counter
# are unchanged), and an unreachable Redis makes every subcommand exit
# non-zero with a clear message.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use ReceiptSchema;
use RedisStory qw(report_node node_record ctl_run redis_connections
                  redis_snapshot subscribe wait_until);

my $CTL = "$FindBin::Bin/../scripts/canary-ctl";
my $KEY = 'canary:app';
my $SCHEMA = ReceiptSchema->load;

my $t = CanaryTest->new(name => 'canary-ctl');
my $redis = '127.0.0.1:' . $t->redis_start;

# a node reports split app, as nginx would (written by hand, to live for
# the whole story): canary-ctl writes the splits the fleet reports
# (t/ctl_fleet.t); the other splits here are written with --force
report_node($t, 'app', 'web-1', record => node_record(interval_ms => 600000));

# a port nothing listens on
my $dead = '127.0.0.1:' . $t->port('nothing');

my @COMMANDS = qw(status fleet set-weight enable disable pause resume
                  rollback reset pin unpin receipts evidence);
my %CHANGES = map { $_ => 1 } qw(set-weight enable disable pause resume
                                 rollback reset pin unpin);

# an argument as a test name shows it: short, one line, printable
sub label {
    return join ' ', map {
        my $s = $_ =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ger;
        length $s > 20 ? substr($s, 0, 17) . '...' : length $s ? $s : "''"
    } @_;
}

# (exit code, stdout, stderr), with CANARY_REDIS on our Redis
sub ctl { ctl_run($t, $redis, @_) }

sub r { $t->redis_cli(@_) }

sub hash { my %h = r('HGETALL', $KEY); return \%h }

# the newest receipt as written
sub last_receipt_text {
    my @l = r('XREVRANGE', "$KEY:receipts", '+', '-', 'COUNT', 1);

    return $l[2] // '';
}


sub receipts {
    my ($key) = @_;

    my @lines = r('XRANGE', $key // "$KEY:receipts", '-', '+');
    my @r;

    # id, "receipt", json: three lines an entry
    while (@lines >= 3) {
        my (undef, $f, $json) = splice @lines, 0, 3;
        next unless $f eq 'receipt';

        # strict JSON; else read it loosely to check the rest, and say so
        my $r = eval { decode_json($json) };
        if (!$r) {
            $r = eval { JSON::PP->new->utf8->loose->decode($json) } // {};
            $r->{invalid_json} = $json;
        }

        push @r, $r;
    }

    return @r;
}

sub published {
    my ($file) = @_;

    open my $fh, '<', $file or return ();
    my @l = map { s/\r?\n\z//r } <$fh>;
    my @ops;

    for my $i (0 .. $#l - 2) {
        push @ops, $l[$i + 2] if $l[$i] eq 'message' && $l[$i + 1] eq $KEY;
    }

    return @ops;
}

# ---- --help --------------------------------------------------------------

{
    my ($rc, $out) = ctl(['--help']);
    is $rc, 0, 'canary-ctl --help exits 0';
    like $out, qr/^usage: canary-ctl/m, 'and prints the usage';

    for my $cmd (@COMMANDS) {
        like $out, qr/^ .*\b\Q$cmd\E SPLIT/m, "--help lists $cmd";
    }

    for my $cmd (@COMMANDS) {
        for my $h ('--help', '-h') {
            ($rc, $out) = ctl([$cmd, $h]);
            is $rc, 0, "canary-ctl $cmd $h exits 0";
            like $out, qr/^usage: canary-ctl \Q$cmd\E\b.*\n\n\S/s,
                "canary-ctl $cmd $h: usage line and description";
        }

        ($rc, $out) = ctl([$cmd, '--help']);
        my ($line) = $out =~ /^(usage: .*)$/m;
        if ($CHANGES{$cmd}) {
            like $line, qr/ \[?--reason TEXT\]?( |$)/,
                "the usage of $cmd shows --reason TEXT";
            like $out, qr/--reason TEXT.*receipt/s,
                "--help of $cmd says the reason goes into the receipt";
        } else {
            unlike $line, qr/--reason/, "$cmd takes no --reason";
        }
    }

    ($rc, $out) = ctl(['--help']);
    like $out, qr/^  set-weight SPLIT PCT \[R\]/m,
        'canary-ctl --help: set-weight takes a reason';
    like $out, qr/^R is \[--reason TEXT\]/m, 'and says what R is';

    # help only right after the command: anywhere else it is no option
    ($rc, $out) = ctl(['set-weight', 'app', 'abc', '--help']);
    is $rc, 2, '--help after the arguments is an unknown option, not help';
}

# ---- every subcommand writes, raises the generation, leaves a receipt ------

my $sub_file = $t->prefix . '/subscriber.out';
subscribe($t, $KEY, $sub_file);

wait_until(3, sub { r('PUBSUB', 'NUMSUB', $KEY) =~ /\n1$/ });
ok r('PUBSUB', 'NUMSUB', $KEY) =~ /\n1$/, 'a SUBSCRIBE client listens';

my $reason = qq{p99 "spike" at 10:02 \\ see C:\\logs\ttab\r\x01 caf\x{e9}};
utf8::encode(my $reason_bytes = $reason);

# a reason over several lines, with quotes, a DEL and the euro sign
my $lines = qq{line one\n"line" two\r\n\tthree \\"\x7f\x{20ac}\n};
utf8::encode(my $lines_bytes = $lines);

# bytes that are not UTF-8 (a lone byte, a cut sequence, an encoded
# surrogate, beyond U+10FFFF, overlong): each byte becomes \u00XX
my $not_utf8 = "bad \xff \xc3( \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf \xe2\x82";
(my $not_utf8_read = $not_utf8) =~ s/([\x80-\xff])/chr ord $1/ge;

# args, operation, fields in the hash, the receipt's entries beyond
# those of every receipt (receipt_id ... previous): exactly these;
# PREV: from_weight is the weight before (a number), null without one
use constant PREV => \'previous weight';

my @writes = (
    [ ['set-weight', 'app', '12.5'], 'weight_set',
      { weight => '12.5' }, { weight => 12.5,
        to_weight => 12.5, from_weight => PREV } ],
    [ ['set-weight', 'app', '20', '--reason', $lines_bytes], 'weight_set',
      { weight => '20' }, { weight => 20, reason => $lines,
        to_weight => 20, from_weight => PREV } ],
    [ ['set-weight', 'app', '--reason=before the weight', '30'], 'weight_set',
      { weight => '30' }, { weight => 30, reason => 'before the weight',
        to_weight => 30, from_weight => PREV } ],
    [ ['set-weight', '--reason', 'before the split', 'app', '35'],
      'weight_set', { weight => '35' },
      { weight => 35, reason => 'before the split',
        to_weight => 35, from_weight => PREV } ],
    [ ['set-weight', 'app', '40', '--reason', $not_utf8], 'weight_set',
      { weight => '40' }, { weight => 40, reason => $not_utf8_read,
        to_weight => 40, from_weight => PREV } ],
    [ ['set-weight', 'app', '100'], 'weight_set',
      { weight => '100' }, { weight => 100,
        to_weight => 100, from_weight => PREV } ],
    [ ['set-weight', 'app', '0.05'], 'weight_set',
      { weight => '0.05' }, { weight => 0.05,
        to_weight => 0.05, from_weight => PREV } ],
    [ ['disable', 'app'], 'split_disabled', { enabled => 0 },
      { enabled => 0 } ],
    [ ['enable', 'app'], 'split_enabled', { enabled => 1 },
      { enabled => 1 } ],
    [ ['disable', 'app', '--reason', $reason_bytes], 'split_disabled',
      { enabled => 0 }, { enabled => 0, reason => $reason } ],
    [ ['enable', 'app', '--reason=' . $lines_bytes], 'split_enabled',
      { enabled => 1 }, { enabled => 1, reason => $lines } ],
    [ ['pause', 'app'], 'rollout_paused', { state => 'paused' },
      { state => 'paused' } ],
    [ ['resume', 'app'], 'rollout_resumed', { state => 'running' },
      { state => 'running' } ],
    [ ['pause', 'app', '--reason', 'hold: "p99"'], 'rollout_paused',
      { state => 'paused' }, { state => 'paused', reason => 'hold: "p99"' } ],
    [ ['resume', 'app', '--reason', "ok\n"], 'rollout_resumed',
      { state => 'running' }, { state => 'running', reason => "ok\n" } ],
    [ ['rollback', 'app', '--reason', $reason_bytes], 'rollback_executed',
      { weight => 0, state => 'rolled_back' },
      { reason => $reason, trigger => 'manual', weight => 0,
        state => 'rolled_back', to_weight => 0, from_weight => PREV,
        detected_at => undef, rollback_duration_ms => undef,
        failed_checks => [] } ],
    [ ['rollback', 'app', '--reason', 'twice'], 'rollback_executed',
      { weight => 0, state => 'rolled_back' },
      { reason => 'twice', trigger => 'manual', weight => 0,
        state => 'rolled_back', to_weight => 0, from_weight => PREV,
        detected_at => undef, rollback_duration_ms => undef,
        failed_checks => [] } ],
    [ ['disable', 'app'], 'split_disabled', { enabled => 0 },
      { enabled => 0 } ],
    [ ['enable', 'app'], 'split_enabled', { enabled => 1 },
      { enabled => 1 } ],
    [ ['reset', 'app', '--reason', $lines_bytes], 'split_reset',
      { weight => 0, state => 'ready' },
      { state => 'ready', weight => 0, reason => $lines,
        to_weight => 0, from_weight => PREV,
        previous_state => 'rolled_back', unpinned => [],
        kept_pins => { canary => 0, stable => 0 },
        sidecar_cleared => JSON::PP::false } ],
    [ ['pin', 'app', 'canary', 't1', 't two', 'q"uote'], 'tenants_pinned',
      {}, { side => 'canary', tenants => ['t1', 't two', 'q"uote'] } ],
    [ ['pin', 'app', 'stable', 't1'], 'tenants_pinned', {},
      { side => 'stable', tenants => ['t1'] } ],
    [ ['unpin', 'app', 't1', 't two', 'q"uote'], 'tenants_unpinned', {},
      { tenants => ['t1', 't two', 'q"uote'] } ],
    # after "--" every argument is a tenant, even one that looks like
    # --reason; before it --reason is an option wherever it stands
    [ ['pin', 'app', '--reason', $lines_bytes, 'canary', '--', '--reason',
       'x'],
      'tenants_pinned', {},
      { side => 'canary', tenants => ['--reason', 'x'], reason => $lines } ],
    [ ['unpin', 'app', '--reason=done', '--', '--reason', 'x'],
      'tenants_unpinned',
      {}, { tenants => ['--reason', 'x'], reason => 'done' } ],
    [ ['pin', 'app', 'canary', 'p1', '--reason', 'after', 'p2'],
      'tenants_pinned', {},
      { side => 'canary', tenants => ['p1', 'p2'], reason => 'after' } ],
    [ ['unpin', 'app', 'p1', 'p2', '--reason=after'], 'tenants_unpinned', {},
      { tenants => ['p1', 'p2'], reason => 'after' } ],
    [ ['set-weight', 'app', '5'], 'weight_set', { weight => 5 },
      { weight => 5, to_weight => 5, from_weight => PREV } ],
);

my @EVERY = qw(receipt_id timestamp operation split generation by previous
               release stage duration_at_stage_seconds stages_completed
               rollout_elapsed_seconds rollbacks_triggered);

my $gen = 0;
my @ops;

for my $w (@writes) {
    my ($args, $op, $fields, $in_receipt) = @$w;
    my $what = label(@$args);

    my $before = hash();
    my ($rc, $out, $err) = ctl($args);

    is $rc, 0, "canary-ctl $what" or diag $err;
    $gen++;
    push @ops, $op;

    my $h = hash();
    my @rec = receipts();
    my $r = $rec[-1] // {};

    subtest "canary-ctl $what: hash, generation, receipt" => sub {
        # what changed, before -> after (exact texts: t/ctl_people.t)
        my %says = (weight_set => 'weight app',
                    split_enabled => 'split app',
                    split_disabled => 'split app',
                    rollout_paused => 'state app',
                    rollout_resumed => 'state app',
                    rollback_executed => 'rollback app',
                    split_reset => 'reset app', tenants_pinned => 'pin app',
                    tenants_unpinned => 'unpin app');
        like $out, qr/^\Q$says{$op}\E.*: .* \(generation $gen\)$/m,
            "prints: $says{$op}...: ... (generation $gen)";
        if ($op eq 'weight_set') {
            my $was = defined $before->{weight} ? "$before->{weight}%"
                                                : '(none)';
            like $out, qr/^weight app: \Q$was\E -> \Q$fields->{weight}\E% /m,
                "weight app: $was -> $fields->{weight}%";
        }
        is $h->{generation}, $gen, "generation $gen";
        is $h->{$_}, $fields->{$_}, "$_ = $fields->{$_}" for sort keys %$fields;
        is $h->{updated_by}, 'tester', 'updated_by from CANARY_ACTOR';
        like $h->{updated_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
            'updated_at in ISO 8601 UTC';
        is scalar(@rec), $gen, 'one receipt more';
        ok !$r->{invalid_json}, 'the receipt is valid JSON'
            or diag $r->{invalid_json};
        is $r->{operation}, $op, "receipt: operation $op";
        is $r->{split}, 'app', 'receipt: split';
        is $r->{generation}, $gen, 'receipt: generation';
        is $r->{by}, 'tester', 'receipt: by';
        like $r->{receipt_id} // '', qr/^[0-9a-f-]{16,}$/, 'receipt: an id';
        is_deeply $r->{previous}, { weight => $before->{weight},
                                    enabled => $before->{enabled} },
            'receipt: the previous weight and enabled (null: none)';
        is_deeply [ $SCHEMA->validate(last_receipt_text()) ], [],
            'receipt: conforms to docs/receipt.schema.json';
        for my $k (sort keys %$in_receipt) {
            my $want = $in_receipt->{$k};
            $want = $before->{weight} if ref $want && $want == PREV;
            is_deeply $r->{$k}, $want, "receipt: $k";
        }
        is_deeply [ map { $r->{$_} } @EVERY[7 .. $#EVERY] ], [(undef) x 6],
            'receipt: no sidecar state: the rollout fields null';
        is_deeply [ sort keys %$r ], [ sort @EVERY, keys %$in_receipt ],
            'receipt: these entries and no other (no reason unless given)';
    };
}

is_deeply [ sort(r('SMEMBERS', "$KEY:pin:canary")) ], [],
    'no pins on canary left';
is_deeply [ sort(r('SMEMBERS', "$KEY:pin:stable")) ], [],
    'no pins on stable left';

# pinning moves a tenant from the other side
{
    ctl(['pin', 'app', 'canary', 'm1', 'm2']);
    ctl(['pin', 'app', 'stable', 'm1']);
    $gen += 2;
    push @ops, 'tenants_pinned', 'tenants_pinned';

    is_deeply [ sort(r('SMEMBERS', "$KEY:pin:canary")) ], ['m2'],
        'pin stable m1 took m1 out of the canary set';
    is_deeply [ sort(r('SMEMBERS', "$KEY:pin:stable")) ], ['m1'],
        'and into the stable set';
}

wait_until(3, sub { published($sub_file) >= @ops });
is_deeply [ published($sub_file) ], \@ops,
    'the subscriber saw one PUBLISH per change, with its operation';

# ---- reading ---------------------------------------------------------------

{
    my ($rc, $out, $err) = ctl(['receipts', 'app', 3, '--json']);
    is $rc, 0, 'canary-ctl receipts app 3 --json' or diag $err;

    my @lines = split /\n/, $out;
    is scalar(@lines), 3, 'three lines';
    my @g = map { (eval { decode_json($_) } // {})->{generation} // -1 }
            @lines;
    is_deeply \@g, [ $gen, $gen - 1, $gen - 2 ],
        'one JSON receipt a line, newest first';

    ($rc, $out) = ctl(['receipts', 'app']);
    is scalar(split /\n/, $out), 10, 'receipts app: the last 10 by default';
    ($rc, $out) = ctl(['receipts', 'app', '--json']);
    is scalar(split /\n/, $out), 10, 'receipts app --json: the last 10 too';

    ($rc, $out, $err) = ctl(['status', 'app']);
    is $rc, 0, 'canary-ctl status app' or diag $err;
    like $out, qr/^\s+weight\s+5$/m, 'status: weight';
    like $out, qr/^\s+generation\s+$gen$/m, 'status: generation';
    like $out, qr/^\s+state\s+ready$/m, 'status: state';
    like $out, qr/pins\s+canary 1, stable 1/, 'status: pins on each side';
    my $iso = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;
    like $out,
        qr/last receipt\s+$iso tenants_pinned .*, generation $gen, by tester$/m,
        'status: the last receipt, one line for people';

    ($rc, $out) = ctl(['status', 'other']);
    is $rc, 0, 'status of a split without state exits 0';
    like $out, qr/no hash in Redis: every nginx keeps what it has in\s+force/,
        'says there is no hash, and that nginx keeps what it has';

    # a hash another writer made, with no receipt stream
    r('HSET', 'canary:bare', 'weight', 3);
    ($rc, $out) = ctl(['status', 'bare']);
    is $rc, 0, 'status of a split without receipts exits 0';
    like $out, qr/^\s+weight\s+3$/m, 'and shows its weight';
}

# ---- environment: prefix, database ------------------------------------------

{
    my ($rc, $out, $err) = ctl(['set-weight', 'app', 7, '--force'],
                               CANARY_PREFIX => 'env:', CANARY_REDIS_DB => 2);
    is $rc, 0, 'CANARY_PREFIX and CANARY_REDIS_DB' or diag $err;
    is r('-n', 2, 'HGET', 'env:app', 'weight'), 7, 'wrote env:app in db 2';
    is r('HGET', $KEY, 'weight'), 5, "$KEY untouched";

    ($rc, $out, $err) = ctl(['--prefix', 'opt:', '--db', 2, '--redis',
                             $redis, 'set-weight', 'app', 8, '--force'],
                            CANARY_REDIS => $dead);
    is $rc, 0, '--prefix, --db and --redis override the environment'
        or diag $err;
    is r('-n', 2, 'HGET', 'opt:app', 'weight'), 8, 'wrote opt:app in db 2';
}

# ---- bad arguments: exit 2, Redis untouched ----------------------------------

sub snapshot { redis_snapshot($t) }

sub connections { redis_connections($t) }

# bad global options: the message and the main usage line
my @bad_global = (
    ['--frob', 'status', 'app'],
    ['--bogus'],
    ['-x', 'status', 'app'],
    ['--redis'],
    ['--redis', 'nocolon', 'status', 'app'],
    ['--redis', 'nohost', 'set-weight', 'app', '5'],
    ['--redis=', 'status', 'app'],
    ['--db'],
    ['--db', 'abc', 'status', 'app'],
    ['--db', 'x', 'disable', 'app'],
    ['--db=', 'status', 'app'],
    ['--db', '-1', 'status', 'app'],
    ['--prefix'],
    ['--password-file'],
    ['--password-file', '/nonexistent/pw', 'status', 'app'],
);

my @bad = (
    [],
    ['frobnicate', 'app'],
    @bad_global,
    ['status'],
    ['status', 'a b'],
    ['status', 'app', 'extra'],
    ['set-weight', 'app'],
    ['set-weight', 'app', '5', 'extra'],
    (map { ['set-weight', 'app', $_] }
         'abc', '101', '-1', '5.555', '', '100.01', '1e2', ' 5', '5%',
         '0x10', '1,5', "5\n"),
    ['set-weight', 'bad/name', '5'],
    ['set-weight', 'x' x 64, '5'],
    ['set-weight', '', '5'],
    ['enable'],
    ['enable', 'app', 'extra'],
    ['disable'],
    ['disable', 'a b'],
    ['pause', 'app', 'extra'],
    ['resume'],
    ['rollback'],
    ['rollback', 'app'],
    ['rollback', 'app', '--reason'],
    ['rollback', 'app', '--reason', ''],
    ['rollback', 'app', '--bogus', 'x'],
    ['rollback', 'app', 'because'],
    ['rollback', 'app', '--reason='],
    ['rollback', 'app', '--reason', 'x', 'because'],
    ['reset'],
    ['reset', 'app'],
    ['reset', 'app', '--reason'],
    ['reset', 'app', '--reason', ''],
    ['reset', 'app', '--reason='],
    ['reset', 'app', 'because'],
    ['reset', 'app', '--reason', 'x', 'because'],
    ['reset', 'a b', '--reason', 'x'],
    ['set-weight', 'app', '5', '--reason'],
    ['set-weight', 'app', '5', '--reason', ''],
    ['set-weight', 'app', '5', '--reason='],
    ['set-weight', 'app', '--reason', 'x'],
    ['set-weight', 'app', '5', '--reason', 'x', 'extra'],
    ['set-weight', 'app', '101', '--reason', 'x'],
    ['set-weight', 'app', '5', '--reason', 'x', '--reason', 'y'],
    ['enable', 'app', '--reason'],
    ['enable', 'app', '--reason', 'x', 'extra'],
    ['disable', 'app', '--reason', ''],
    ['disable', '--reason', 'x'],
    ['pause', 'app', '--reason='],
    ['pause', 'app', 'x', '--reason', 'y'],
    ['resume', 'app', '--reason'],
    ['resume', 'a b', '--reason', 'x'],
    ['pin'],
    ['pin', 'app'],
    ['pin', 'app', 'canary'],
    ['pin', 'app', 'sideways', 't1'],
    ['pin', 'app', 'canary', 'x' x 257],
    ['pin', 'app', 'canary', ''],
    ['pin', 'app', 'canary', 'ok', ''],
    ['pin', 'app', '--reason'],
    ['pin', 'app', '--reason', 'x'],
    ['pin', 'app', '--reason', 'x', 'canary'],
    ['pin', 'app', '--reason', '', 'canary', 't1'],
    ['pin', 'app', '--reason=', 'canary', 't1'],
    ['pin', 'app', '--reason', 'x', 'sideways', 't1'],
    ['pin', 'app', '--reason', 'x', 'canary', ''],
    ['unpin', 'app'],
    ['unpin'],
    ['unpin', 'app', ''],
    ['unpin', 'app', 'x' x 257],
    ['unpin', 'app', 'ok', ''],
    ['unpin', 'app', '--reason'],
    ['unpin', 'app', '--reason', 'x'],
    ['unpin', 'app', '--reason=x'],
    ['unpin', 'app', '--reason', '', 't1'],
    ['unpin', 'app', '--reason', 'x', ''],
    ['unpin', 'app', '--reason', 'x', 'x' x 257],
    ['receipts'],
    ['receipts', 'app', '0'],
    ['receipts', 'app', 'abc'],
    ['receipts', 'app', '-1'],
    ['receipts', 'app', '100000'],
    ['receipts', 'app', '1', '2'],
);

{
    my $snap = snapshot();
    my $conns = connections();

    my %global = map { ("$_" => 1) } @bad_global;

    for my $args (@bad) {
        my $what = label(@$args);

        my ($rc, $out, $err) = ctl($args);

        subtest "canary-ctl $what" => sub {
            is $rc, 2, 'exits 2';
            like $err, qr/^canary-ctl: \S/m, 'says why on stderr' if @$args;
            like $err, qr/^usage: canary-ctl /m, 'and prints a usage line';
            like $err, qr/^usage: canary-ctl \[--redis /m,
                'the main one, for a bad global option' if $global{"$args"};
            is $out, '', 'nothing on stdout';
        };
    }

    is connections(), $conns + 1,
        'none of the ' . scalar(@bad) . ' bad invocations connected to Redis';
    is snapshot(), $snap, 'every key and its DUMP unchanged';
}

# unpin refuses the tenants pin refuses before it connects: against an
# address nothing listens on, trying would exit 1 ("cannot reach Redis")
for my $args (['unpin', 'app', ''], ['unpin', 'app', 't1', ''],
              ['unpin', 'app', 'x' x 257],
              ['unpin', 'app', '--reason', 'x', ''])
{
    my $what = label(@$args);

    for my $addr ($dead, '127.0.0.1:1') {
        my ($rc, $out, $err) = ctl($args, CANARY_REDIS => $addr);

        subtest "canary-ctl $what, Redis at $addr" => sub {
            is $rc, 2, 'exits 2, as pin does';
            like $err, qr/^canary-ctl: tenant of \d+ bytes$/m, 'says why';
            like $err, qr/^usage: canary-ctl unpin SPLIT /m,
                'with the usage line of unpin';
            unlike $err, qr/cannot reach|Could not connect/,
                'and never tried to connect';
        };
    }
}

# ---- Redis unreachable -------------------------------------------------------

my @calls = (
    ['status', 'app'],
    ['set-weight', 'app', 5],
    ['enable', 'app'],
    ['disable', 'app'],
    ['pause', 'app'],
    ['resume', 'app'],
    ['rollback', 'app', '--reason', 'x'],
    ['reset', 'app', '--reason', 'x'],
    ['pin', 'app', 'canary', 't1'],
    ['unpin', 'app', 't1'],
    ['receipts', 'app'],
);

for my $args (@calls) {
    for my $how ([ '--redis', ['--redis', $dead] ],
                 [ 'CANARY_REDIS', [], CANARY_REDIS => $dead ])
    {
        my ($label, $pre, %env) = @$how;
        my ($rc, $out, $err) = ctl([@$pre, @$args], %env);

        subtest "unreachable Redis ($label): canary-ctl @$args" => sub {
            isnt $rc, 0, 'exits non-zero';
            isnt $rc, 2, 'not as for bad arguments';
            like $err, qr/cannot reach Redis|Could not connect/,
                'says it cannot reach Redis';
            is $out, '', 'prints nothing on stdout';
        };
    }
}

# ---- one redis-cli and nothing else ------------------------------------------

# A write's latency is canary-ctl's own start-up: every command runs
# redis-cli once and no other program (no sed, awk, date, cat, grep, id,
# head, tr, paste).  Wrappers first in PATH log each program started.
{
    my $bin = $t->prefix . '/spy-bin';
    my $log = $t->prefix . '/spy.log';
    mkdir $bin;

    for my $prog (qw(redis-cli sed awk date cat grep id head tr paste cut
                     uuidgen printf env))
    {
        my $real = `command -v $prog 2>/dev/null`;
        chomp $real;
        next unless $real;

        open my $fh, '>', "$bin/$prog" or die "$bin/$prog: $!";
        print $fh "#!/bin/sh\necho $prog >>'$log'\nexec '$real' \"\$@\"\n";
        close $fh;
        chmod 0755, "$bin/$prog";
    }

    my @cmds = (
        ['set-weight', 'app', '6'],
        ['set-weight', 'app', '6', '--reason', "spy \"q\"\n"],
        ['disable', 'app', '--reason=spy'],
        ['disable', 'app'],
        ['enable', 'app'],
        ['pause', 'app'],
        ['resume', 'app'],
        ['rollback', 'app', '--reason', 'spy'],
        ['reset', 'app', '--reason', 'spy'],
        ['pin', 'app', 'canary', 'spy1', 'spy2'],
        ['unpin', 'app', 'spy1', 'spy2'],
        ['pin', 'app', '--reason', 'spy', 'canary', 'spy3'],
        ['unpin', 'app', '--reason', 'spy', 'spy3'],
        ['set-weight', 'app', '6', '--force'],
        ['set-weight', 'nobody', '6'],
        ['status', 'app'],
        ['status', 'nobody'],
        ['fleet', 'app'],
        ['fleet', 'app', '--json'],
        ['fleet', 'nobody'],
        ['receipts', 'app', '2'],
    );

    for my $args (@cmds) {
        unlink $log;

        # no USER: the user name comes from bash, not from "id -un"
        my ($rc, $out, $err) = ctl($args, PATH => "$bin:$ENV{PATH}",
                                   USER => '', CANARY_ACTOR => '');
        open my $fh, '<', $log;
        my @ran = $fh ? map { chomp; $_ } <$fh> : ();

        # a change of a split no nginx reports: refused, by the same EVAL
        is $rc, $args->[1] eq 'nobody' && $args->[0] ne 'status'
                && $args->[0] ne 'fleet' ? 2 : 0,
            "canary-ctl @$args (PATH with spies)" or diag $err;
        is_deeply \@ran, ['redis-cli'],
            "canary-ctl @$args runs redis-cli once and no other program";
    }

    my $h = hash();
    like $h->{updated_by}, qr/^canary-ctl:\S+/,
        'without USER, updated_by still names the user';

    # refused arguments run no program at all, redis-cli least of all
    for my $args (['unpin', 'app', ''], ['--db', 'x', 'status', 'app'],
                  ['--bogus', 'status', 'app'],
                  ['set-weight', 'app', '5', '--reason', ''])
    {
        unlink $log;

        my ($rc) = ctl($args, PATH => "$bin:$ENV{PATH}");
        my @ran;
        if (open my $fh, '<', $log) {
            @ran = map { chomp; $_ } <$fh>;
        }

        is $rc, 2, 'canary-ctl ' . label(@$args) . ' (PATH with spies)';
        is_deeply \@ran, [], 'canary-ctl ' . label(@$args) . ' runs nothing';
    }
}

# ---- arguments reach Redis byte for byte -------------------------------------

{
    my @odd = ('--', '-x', 'a b', qq{q"uote}, 'back\\slash', "tab\there",
               "cr\rhere", "new\nline", "caf\xc3\xa9", "\x01ctl", '*', '"',
               "\xff\xfe", "cut\xc3(");

    # "--" first: the tenants that look like options are tenants
    my ($rc, $out, $err) = ctl(['pin', 'app', 'stable', '--', @odd]);
    is $rc, 0, 'pin tenants with quotes, dashes, control bytes' or diag $err;

    is r('SCARD', "$KEY:pin:stable"), 1 + @odd,
        'each one a member (and m1 from before)';

    for my $odd (@odd) {
        (my $what = $odd) =~ s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ge;
        is r('SISMEMBER', "$KEY:pin:stable", $odd), 1, "member: $what";
    }

    my $r = (receipts())[-1];
    ok !$r->{invalid_json}, 'the receipt is valid JSON'
        or diag $r->{invalid_json};
    my @want = @odd;
    utf8::decode($_) for @want;
    is_deeply $r->{tenants}, \@want, 'the receipt lists them exactly';

    ($rc, $out, $err) = ctl(['unpin', 'app', '--', @odd]);
    is $rc, 0, 'unpin them' or diag $err;
    is r('SCARD', "$KEY:pin:stable"), 1, 'only m1 left';
}

# ---- many tenants in one command ---------------------------------------------

{
    my @many = map { sprintf 'bulk-%05d', $_ } 1 .. 20000;

    my ($rc, $out, $err) = ctl(['pin', 'app', 'canary', @many]);
    is $rc, 0, 'pin 20000 tenants in one command' or diag $err;
    is r('SCARD', "$KEY:pin:canary"), 1 + @many, 'all of them pinned';

    my $r = (receipts())[-1];
    is scalar(@{ $r->{tenants} // [] }), scalar(@many),
        'and listed in the receipt';

    ($rc, $out, $err) = ctl(['unpin', 'app', @many]);
    is $rc, 0, 'unpin 20000 tenants in one command' or diag $err;
    is r('SCARD', "$KEY:pin:canary"), 1, 'all of them unpinned';
}

# ---- a change Redis refuses changes nothing ----------------------------------

{
    r('HSET', 'canary:badgen', 'generation', 'abc', 'weight', 4);
    my $before = join ',', sort(r('HGETALL', 'canary:badgen'));
    my $streams = r('EXISTS', 'canary:badgen:receipts');

    my ($rc, $out, $err) = ctl(['set-weight', 'badgen', 9, '--force']);
    isnt $rc, 0, 'set-weight on a hash with a non-integer generation fails';
    isnt $rc, 2, 'not as for bad arguments';
    like $err, qr/Redis at \Q$redis\E refused the change:\n.*not an integer/,
        'and says what Redis said';
    is $out, '', 'nothing on stdout';
    is join(',', sort(r('HGETALL', 'canary:badgen'))), $before,
        'the hash is unchanged (weight not written)';
    is r('EXISTS', 'canary:badgen:receipts'), $streams, 'no receipt';

    r('SET', 'canary:str', 'x');
    ($rc, $out, $err) = ctl(['status', 'str']);
    isnt $rc, 0, 'status of a key that is not a hash fails';
    like $err, qr/WRONGTYPE/, 'with what Redis said';
}

# ---- rolled back or tripped: nothing but a reset ----------------------------

sub xlen { scalar r('XLEN', "$KEY:receipts") }

# what an operator must not do before a reset: each exits 2 and writes
# nothing (every key and its DUMP, the generation, the receipts and the
# PUBLISHes are as they were)
my @refused = (
    ['set-weight', 'app', '50'],
    ['set-weight', 'app', '0', '--reason', 're-arm the guard'],
    ['pin', 'app', 'canary', 'r1'],
    ['pin', 'app', 'stable', 'r1'],
    ['pin', 'app', '--reason', 'x', 'canary', 'r1', 'r2'],
    ['pause', 'app'],
    ['resume', 'app'],
    ['resume', 'app', '--reason', 'go on'],
);

for my $case ([ 'rolled_back', 'rolled back' ],
              [ 'guard_tripped', 'guard tripped' ])
{
    my ($state, $says) = @$case;

    if ($state eq 'rolled_back') {
        my ($rc, $out, $err) = ctl(['rollback', 'app', '--reason', 'drill']);
        is $rc, 0, 'canary-ctl rollback app' or diag $err;

    } else {
        # as the module's guard writes its trip
        r('HINCRBY', $KEY, 'generation', 1);
        r('HSET', $KEY, qw(weight 0 state guard_tripped
                           updated_by nginx-guard:host1));
    }

    is hash()->{state}, $state, "state $state";

    my $snap = snapshot();
    my $g = hash()->{generation};
    my $n = xlen();
    my $published = () = published($sub_file);

    for my $args (@refused) {
        my $what = label(@$args);
        my ($rc, $out, $err) = ctl($args);

        subtest "$state: canary-ctl $what" => sub {
            is $rc, 2, 'exits 2';
            like $err,
                qr/^canary-ctl: app: \Q$says\E: canary-ctl reset first$/m,
                "says \"$says: canary-ctl reset first\"";
            is $out, '', 'nothing on stdout';
        };
    }

    is snapshot(), $snap, "$state: every key and its DUMP unchanged";
    is hash()->{generation}, $g, "$state: generation still $g";
    is xlen(), $n, "$state: no receipt";
    sleep 0.3;
    is scalar(() = published($sub_file)), $published, "$state: no PUBLISH";

    # what stays allowed: the kill switch, unpinning, another rollback
    for my $args (['disable', 'app'], ['enable', 'app'],
                  ['unpin', 'app', 'nobody'])
    {
        my ($rc, $out, $err) = ctl($args);
        is $rc, 0, "$state: canary-ctl @$args is allowed" or diag $err;
    }
    is hash()->{state}, $state, "$state: and leaves the state as it was";

    my ($rc, $out, $err) = ctl(['reset', 'app', '--reason', "after $says"]);
    is $rc, 0, "$state: canary-ctl reset app" or diag $err;
    my $h = hash();
    is $h->{state}, 'ready', "$state: reset: state ready";
    is $h->{weight}, 0, "$state: reset: weight 0";
    my $r = (receipts())[-1];
    is $r->{operation}, 'split_reset', "$state: reset: receipt split_reset";
    is $r->{previous_state}, $state, "$state: reset: previous_state $state";

    ($rc, $out, $err) = ctl(['set-weight', 'app', '10']);
    is $rc, 0, "$state: after the reset set-weight works again" or diag $err;
}

# ---- reset: the plan's pins go, the operator's stay -------------------------

{
    my @canary_before = sort(r('SMEMBERS', "$KEY:pin:canary"));
    my @stable_before = sort(r('SMEMBERS', "$KEY:pin:stable"));

    # the sidecar's contract: a tenant it pins for the plan is in
    # :pin:plan as well as in :pin:canary
    r('SADD', "$KEY:pin:canary", 'plan-a', 'plan-b', 'plan-op');
    r('SADD', "$KEY:pin:plan", 'plan-a', 'plan-b', 'plan-op', 'plan-gone');

    # an operator who pins a plan's tenant makes it theirs
    my ($rc, $out, $err) = ctl(['pin', 'app', 'canary', 'plan-op', 'op-c',
                                "op \"q\"\nx"]);
    is $rc, 0, 'pin a tenant of the plan and two others' or diag $err;
    is r('SISMEMBER', "$KEY:pin:plan", 'plan-op'), 0,
        "pin takes the tenant out of the plan's set";
    ($rc, $out, $err) = ctl(['pin', 'app', 'stable', 'op-s']);
    is $rc, 0, 'pin a tenant to stable' or diag $err;

    # a rollout that completed, its saved state
    r('HINCRBY', $KEY, 'generation', 1);
    r('HSET', $KEY, qw(weight 100 state completed updated_by sidecar-a
                       weight.internal 25));
    r('HSET', "$KEY:sidecar", qw(status completed stage 2));

    # (a tenant with a newline: redis_cli's lines cannot list it)
    my @kept = sort @canary_before, 'plan-op', 'op-c', "op \"q\"\nx";
    my @stable = sort @stable_before, 'op-s';

    my $g = hash()->{generation};
    my $n = xlen();

    ($rc, $out, $err) = ctl(['reset', 'app', '--reason', 'v2 is out']);
    is $rc, 0, 'canary-ctl reset app after a completed rollout' or diag $err;
    is $err, '', 'nothing on stderr';

    # "  TITLE: N" and N lines of a JSON string each -> [N, names]
    my $listed = sub {
        my ($title) = @_;
        my ($n, $block) = $out =~ /^  \Q$title\E: (\d+)\n((?:    .*\n)*)/m;
        return [ -1, [] ] unless defined $n;
        my $json = JSON::PP->new->allow_nonref;
        return [ $n, [ map { $json->decode(s/^    //r) }
                       split /\n/, $block ] ];
    };

    my $g1 = $g + 1;
    like $out,
        qr/^reset app: state \S+ -> ready, weight \S+ -> 0% \(generation $g1\)$/m,
        "prints: reset app: state ... -> ready, ... (generation $g1)";
    like $out, qr/sidecar's saved rollout deleted/,
        "says the sidecar's rollout is deleted";
    is_deeply $listed->("the plan's pins removed from canary"),
        [ 2, ['plan-a', 'plan-b'] ],
        "lists the plan's pins it removed from canary";
    is_deeply $listed->('pins that stay on canary (yours)'),
        [ scalar @kept, \@kept ],
        'lists the pins that stay on canary: ' . join(', ', @kept)
        =~ s/\n/\\n/gr;
    is_deeply $listed->('pins that stay on stable (yours)'),
        [ scalar @stable, \@stable ],
        'lists the pins that stay on stable: ' . join(', ', @stable);
    my $cohorts = qq{  cohort weights in Redis that stay: 1\n}
                  . qq{    "weight.internal" "25"\n};
    like $out, qr/^\Q$cohorts\E/m,
        'and the cohort weight in Redis that stays';
    unlike $out, qr/kill switch/, 'no word of a kill switch: enabled is 1';

    my $h = hash();
    is $h->{generation}, $g + 1, 'generation raised by one';
    is $h->{state}, 'ready', 'state ready';
    is $h->{weight}, 0, 'weight 0';
    is $h->{'weight.internal'}, 25, 'the cohort weight stays';
    is $h->{updated_by}, 'tester', 'updated_by';
    is r('SCARD', "$KEY:pin:canary"), scalar @kept,
        scalar(@kept) . ' pins on canary';
    is scalar(grep { r('SISMEMBER', "$KEY:pin:canary", $_) } @kept),
        scalar @kept, "the plan's pins are off canary, the operator's stay";
    is_deeply [ sort(r('SMEMBERS', "$KEY:pin:stable")) ], \@stable,
        'the pins on stable stay';
    is r('EXISTS', "$KEY:pin:plan"), 0, "the plan's set is gone";
    is r('EXISTS', "$KEY:sidecar"), 0, "the sidecar's saved rollout is gone";

    is xlen(), $n + 1, 'one receipt';
    my $r = (receipts())[-1];
    ok !$r->{invalid_json}, 'valid JSON' or diag $r->{invalid_json};
    is_deeply { map { $_ => $r->{$_} } qw(operation generation state weight
                                          reason previous_state unpinned
                                          kept_pins) },
        { operation => 'split_reset', generation => $g + 1, state => 'ready',
          weight => 0, reason => 'v2 is out', previous_state => 'completed',
          unpinned => ['plan-a', 'plan-b'],
          kept_pins => { canary => scalar @kept, stable => scalar @stable } },
        'the receipt says what the reset did';
    ok $r->{sidecar_cleared}, 'receipt: sidecar_cleared true';
    is_deeply $r->{previous}, { weight => 100, enabled => 1 },
        'receipt: the previous weight and enabled';

    ok wait_until(3, sub { (published($sub_file))[-1] eq 'split_reset' }),
        'PUBLISHed split_reset';

    # again: nothing of the plan left; a kill switch that is on says so
    ($rc, $out, $err) = ctl(['disable', 'app']);
    is $rc, 0, 'the kill switch on' or diag "$out$err";
    ($rc, $out, $err) = ctl(['reset', 'app', '--reason', 'again']);
    is $rc, 0, 'reset again' or diag $err;
    like $out, qr/^  the plan's pins removed from canary: 0$/m,
        'nothing of the plan to remove';
    like $out, qr/no saved rollout of canary-sidecar/, 'no saved rollout';
    like $out, qr/^  enabled 0 stays: the kill switch is on/m,
        'says the kill switch stays on';
    is hash()->{enabled}, 0, 'and it does';
    ok !(receipts())[-1]{sidecar_cleared}, 'receipt: sidecar_cleared false';
    ctl(['enable', 'app']);
}

done_testing;
