#!/usr/bin/perl

# Story: a person operates a split with canary-ctl and reads what it
# says, against a real Redis.
#
#   * Every change says what changed, before -> after, with the
#     generation it made: "weight app: 5% -> 20% (generation 2)".  The
#     before is read in the write's own EVAL: twelve set-weight run at
#     once, and each one's "before" is the "after" of the generation
#     just below it.
#   * pin says which tenants were newly pinned, moved from the other
#     side or already there; unpin which were taken off each side and
#     which were not pinned.
#   * pins SPLIT [canary|stable] lists the pinned tenants, sorted.
#   * receipts prints one line per receipt, and each line is what the
#     same receipt's JSON (receipts --json) says: time, operation, stage
#     and weight moves, generation, who, reason; status's last receipt
#     is the newest of those lines: an entry's receipt field, whatever
#     other fields it has; a pin set of another type is an error naming
#     its key, exit 1, not a count.
#   * Every error that concerns Redis names the address it tried, with
#     redis-cli's reason: a closed port, a missing unix socket.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
use POSIX qw(strftime);
use Time::Local qw(timegm);
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_run report_node node_record);

my $t = CanaryTest->new(name => 'ctl-people');
my $redis = '127.0.0.1:' . $t->redis_start;

# a live nginx reports split app for the whole story
report_node($t, 'app', 'web-1', record => node_record(interval_ms => 600000));

sub r { $t->redis_cli(@_) }

sub ctl { ctl_run($t, $redis, [@_]) }

# runs a change; checks exit 0 and the whole of stdout
sub says {
    my ($args, $want, $name) = @_;
    my ($rc, $out, $err) = ctl(@$args);

    is $rc, 0, "canary-ctl @$args: exit 0" or diag $err;
    is $out, $want, $name // "canary-ctl @$args says what changed";
}

# ---- confirmations: before -> after (generation) ------------------------

says ['set-weight', 'app', '5'], "weight app: (none) -> 5% (generation 1)\n";
says ['set-weight', 'app', '20', '--reason', 'next step'],
    "weight app: 5% -> 20% (generation 2)\n";
says ['cohort', 'app', 'beta', '10'],
    "cohort beta app: (none) -> 10% (generation 3)\n";
says ['cohort', 'app', 'beta', '12.5'],
    "cohort beta app: 10% -> 12.5% (generation 4)\n";
says ['disable', 'app'], "split app: (none) -> disabled (generation 5)\n"
                         . "  the kill switch: every tenant on stable\n";
says ['enable', 'app'], "split app: disabled -> enabled (generation 6)\n";
says ['pause', 'app'], "state app: (none) -> paused (generation 7)\n";
says ['resume', 'app'], "state app: paused -> running (generation 8)\n";

# ---- pin, unpin, pins ---------------------------------------------------

says ['pin', 'app', 'canary', 't2', 't1', 'q"x'],
    "pin app canary: 3 tenant(s) (generation 9)\n"
    . "  newly pinned to canary: 3\n    t2\n    t1\n    \"q\\\"x\"\n";
says ['pin', 'app', 'stable', 't1', 't3', 't1'],
    "pin app stable: 2 tenant(s) (generation 10)\n"
    . "  newly pinned to stable: 2\n    t1\n    t3\n"
    . "  of them moved from canary: 1\n    t1\n";
says ['pin', 'app', 'stable', 't3', 't4'],
    "pin app stable: 2 tenant(s) (generation 11)\n"
    . "  newly pinned to stable: 1\n    t4\n"
    . "  already pinned to stable: 1\n    t3\n";

says ['pins', 'app'],
    "canary: 2\n  \"q\\\"x\"\n  t2\nstable: 3\n  t1\n  t3\n  t4\n",
    'pins app: both sides, labelled, counted, sorted';
says ['pins', 'app', 'canary'], "\"q\\\"x\"\nt2\n",
    'pins app canary: the tenants only, sorted';
says ['pins', 'app', 'stable'], "t1\nt3\nt4\n", 'pins app stable';
# a split Redis has nothing of (a typo): exit 1, not "canary: 0" (more
# in t/ctl_hostile.t); one with a hash and no pins: the zeros
my ($rc, $out, $err) = ctl('pins', 'nothing');
is "$rc $out", '1 ', 'pins of a split Redis has nothing of: exit 1';
like $err, qr/^canary-ctl: Redis at \Q$redis\E has nothing of split "nothing"/,
    'and says so';
r('HSET', 'canary:nopins', 'weight', '0');
says ['pins', 'nopins'], "canary: 0\nstable: 0\n", 'pins of a split without';
r('SADD', 'canary:app:pin:plan', 't2');
like((ctl('pins', 'app'))[1], qr/^canary: 2 \(the plan's: 1\)$/m,
     "pins app: how many are the plan's");

says ['unpin', 'app', 't2', 't3', 'nobody', 't3', 'ghost'],
    "unpin app: 2 tenant(s) unpinned, 2 not pinned (generation 12)\n"
    . "  unpinned from canary: 1\n    t2\n"
    . "  unpinned from stable: 1\n    t3\n"
    . "  not pinned (nothing to remove): 2\n    nobody\n    ghost\n";
is_deeply [ sort(r('SMEMBERS', 'canary:app:pin:stable')) ], ['t1', 't4'],
    'unpin took t3 off stable';

says ['unpin', 'app', 'nobody'],
    "unpin app: 0 tenant(s) unpinned, 1 not pinned (generation 13)\n"
    . "  not pinned (nothing to remove): 1\n    nobody\n";

# many: the first 50 of a list, and how many more
($rc, $out, $err) = ctl('unpin', 'app', map { "many-$_" } 1 .. 60);
is $rc, 0, 'unpin 60 tenants pinned nowhere: exit 0' or diag $err;
is $out, "unpin app: 0 tenant(s) unpinned, 60 not pinned (generation 14)\n"
         . "  not pinned (nothing to remove): 60\n"
         . join('', map { "    many-$_\n" } 1 .. 50) . "    ... and 10 more\n",
    'the first 50 named, and 10 more';

for my $bad (['pins'], ['pins', 'app', 'both'], ['pins', 'app', 'canary', 'x'],
             ['pins', 'app', '--reason', 'x'])
{
    my ($rc, undef, $err) = ctl(@$bad);
    is $rc, 2, "canary-ctl @$bad: exit 2";
    like $err, qr/^usage: canary-ctl pins SPLIT \[canary\|stable\]$/m,
        'with the usage line';
}

# ---- rollback and reset --------------------------------------------------

says ['rollback', 'app', '--reason', 'p99 "up"'],
    "rollback app: weight 20% -> 0%, state running -> rolled_back"
    . " (generation 15)\n"
    . "  every request of app on stable until canary-ctl reset\n";
($rc, $out, $err) = ctl('reset', 'app', '--reason', 'fixed');
is $rc, 0, 'reset: exit 0' or diag $err;
like $out, qr/\Areset\ app:\ state\ rolled_back\ ->\ ready,
               \ weight\ 0%\ ->\ 0%\ \(generation\ 16\)\n
               \ \ state\ ready,\ weight\ 0/x,
    'reset app: state and weight, before -> after';

# ---- receipts: one line each, what its JSON says ------------------------

# receipts another writer wrote: a sidecar's (a stage move, failed
# checks, a timestamp with a fraction and an offset), and one no JSON
r('XADD', 'canary:app:receipts', '*', 'receipt', encode_json({
    receipt_id => '0a1b2c3d-0000-4000-8000-000000000002',
    timestamp => '2026-11-22T03:21:05.731+01:00',
    operation => 'rollback_executed', split => 'app', generation => 17,
    by => 'sidecar-a', from_stage => '10_percent', to_stage => '10_percent',
    from_weight => 10, to_weight => 0, state => 'rolled_back',
    failed_checks => ['error_rate_percent', 'availability_percent'],
    reason => "ROLLBACK: error_rate\n1.65% > 0.98%" }));
r('XADD', 'canary:app:receipts', '*', 'receipt', encode_json({
    timestamp => '2026-11-22T02:10:11Z', operation => 'traffic_promoted',
    split => 'app', generation => 18, by => 'sidecar-a',
    from_stage => 'canary-10', to_stage => 'canary-25',
    from_weight => 10, to_weight => 25, reason => 'PROMOTE' }));
r('XADD', 'canary:app:receipts', '*', 'receipt', 'written by hand');

# the line a receipt's JSON makes, written here apart from canary-ctl
sub pct { defined $_[0] ? "$_[0]%" : '(none)' }

sub clean { my ($s) = @_; $s =~ s/[\x00-\x1f\x7f]/?/g; $s }

sub expected {
    my ($r) = @_;
    my @p;

    if (defined $r->{from_stage} || defined $r->{to_stage}) {
        push @p, ($r->{from_stage} // '') eq ($r->{to_stage} // '')
                 ? "stage $r->{to_stage}"
                 : 'stage ' . ($r->{from_stage} // '(start)') . ' -> '
                   . ($r->{to_stage} // '(none)');
    } elsif (defined $r->{stage}) {
        push @p, "stage $r->{stage}";
    }
    if (defined $r->{from_weight} || defined $r->{to_weight}) {
        push @p, 'weight ' . pct($r->{from_weight}) . ' -> '
                 . pct($r->{to_weight});
    } elsif (defined $r->{weight}) {
        push @p, 'weight ' . pct($r->{weight});
    }
    push @p, "cohort $r->{cohort} -> " . pct($r->{cohort_weight})
        if defined $r->{cohort};
    push @p, 'enabled ' . ($r->{previous}{enabled} // '(none)')
             . " -> $r->{enabled}" if defined $r->{enabled};
    if (defined $r->{state}) {
        push @p, defined $r->{previous_state}
                 ? "state $r->{previous_state} -> $r->{state}"
                 : "state $r->{state}";
    }
    if ($r->{tenants}) {
        my @t = @{ $r->{tenants} };
        my @s = @t > 3 ? (@t[0 .. 2], '+' . (@t - 3) . ' more') : @t;
        push @p, scalar(@t) . ' tenant(s)'
                 . ($r->{side} ? " to $r->{side}" : '') . ': '
                 . join(', ', map { clean($_) } @s);
    }
    push @p, 'failed ' . join(', ', @{ $r->{failed_checks} })
        if $r->{failed_checks} && @{ $r->{failed_checks} };
    push @p, "generation $r->{generation}", "by $r->{by}";
    push @p, 'reason: ' . clean($r->{reason}) if defined $r->{reason};

    # the time in UTC, to the second
    my ($y, $mo, $d, $h, $mi, $s, $sg, $oh, $om) = $r->{timestamp}
        =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.\d+)?
             (?:Z|([+-])(\d\d):(\d\d))$/x
        or return "no timestamp: $r->{timestamp}";
    my $off = $sg ? ($sg eq '-' ? -1 : 1) * ($oh * 3600 + $om * 60) : 0;
    my $at = strftime('%Y-%m-%dT%H:%M:%SZ',
                      gmtime(timegm($s, $mi, $h, $d, $mo - 1, $y) - $off));

    return sprintf '%s %-19s %s', $at, $r->{operation}, join ', ', @p;
}

($rc, $out, $err) = ctl('receipts', 'app', '30', '--json');
is $rc, 0, 'receipts app 30 --json: exit 0' or diag $err;
my @json = split /\n/, $out;
($rc, $out, $err) = ctl('receipts', 'app', '30');
is $rc, 0, 'receipts app 30: exit 0' or diag $err;
my @lines = split /\n/, $out;

is scalar(@lines), scalar(@json), 'as many lines as --json prints';
is scalar(@json), 19, 'the 16 changes, the 2 receipts and the entry by hand';
like $lines[0], qr/^\S+Z \(not JSON\) written by hand$/,
    'an entry that is no JSON: its stream time, said so, as it is';
is $json[0], 'written by hand', '--json: as it is';

for my $i (1 .. $#json) {
    my $r = decode_json($json[$i]);
    is $lines[$i], expected($r), "the line of $r->{operation}, generation "
        . "$r->{generation}: what its JSON says";
}

is $lines[2], '2026-11-22T02:21:05Z rollback_executed   stage 10_percent, '
    . 'weight 10% -> 0%, state rolled_back, failed error_rate_percent, '
    . 'availability_percent, generation 17, by sidecar-a, '
    . 'reason: ROLLBACK: error_rate?1.65% > 0.98%',
    'a sidecar\'s rollback: UTC to the second, one line';
is $lines[1], '2026-11-22T02:10:11Z traffic_promoted    stage canary-10 -> '
    . 'canary-25, weight 10% -> 25%, generation 18, by sidecar-a, '
    . 'reason: PROMOTE', 'a promotion: the stage and the weight move';
like $lines[-1], qr/^\S+Z\ weight_set\ {10}weight\ \(none\)\ ->\ 5%,
                    \ generation\ 1,\ by\ tester$/x,
    'the first set-weight';
like $lines[-2], qr/^\S+Z\ weight_set\ {10}weight\ 5%\ ->\ 20%,\ generation\ 2,
                    \ by\ tester,\ reason:\ next\ step$/x,
    'the second, with its reason';

($rc, $out) = ctl('receipts', 'app', '2', '--op', 'weight_set');
is $out, join('', map { "$_\n" } @lines[-2, -1]),
    '--op weight_set: the same lines';

($rc, $out, $err) = ctl('status', 'app');
is $rc, 0, 'status app: exit 0' or diag $err;
like $out, qr/^  last receipt   \Q$lines[0]\E$/m,
    'status: the last receipt, the line receipts prints';

# a stranger's receipts: fields of the wrong types, JSON that is no
# object; a line each, exit 0
r('XADD', 'canary:odd:receipts', '*', 'receipt',
  '{"operation":{"x":1},"tenants":[null,{"a":1},"ok",3],"by":null,'
  . '"generation":"x","previous":5,"enabled":1,"state":["x"],'
  . '"failed_checks":{},"timestamp":"garbage"}');
r('XADD', 'canary:odd:receipts', '*', 'receipt', '[1,2]');
($rc, $out, $err) = ctl('receipts', 'odd');
is $rc, 0, 'receipts of a stranger: exit 0' or diag $err;
my $odd = qr/\A\S+Z \(not a JSON object\) \[1,2\]\n\S+Z \?\s+/;
my $fields = qr/enabled \(none\) -> 1, 4 tenant\(s\): \?, \?, ok, \+1 more, /;
like $out, qr/$odd${fields}generation \?, by \?\n\z/,
    'a line each, "?" for what is not there';

# ---- the before is read in the write's EVAL -----------------------------

# twelve set-weight at once: each says the weight of the generation just
# below its own
my @w = map { $_ * 5 } 1 .. 12;
my %said;
my @pids;
for my $w (@w) {
    my $file = $t->prefix . "/tmp/race-$w";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # its own output file (ctl_run's is one for the whole test)
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file or die;
        $ENV{CANARY_REDIS} = $redis;
        exec $RedisStory::CTL, 'set-weight', 'race', $w, '--force';
        CORE::exit(127);
    }
    push @pids, [$pid, $file];
}
for (@pids) {
    waitpid $_->[0], 0;
    my $rc = $? >> 8;
    open my $fh, '<', $_->[1] or die;
    local $/;
    my $text = "$rc\n" . (<$fh> // '');
    my ($from, $to, $g) = $text
        =~ /^0\nweight\ race:\ (\S+)\ ->\ (\S+)%\ \(generation\ (\d+)\)\n\z/x
        or do { fail("a set-weight said: $text"); next };
    $said{$g} = [$from, $to];
}
is scalar(keys %said), 12, 'twelve changes, twelve generations';
is_deeply [ map { $said{$_}[0] } 1 .. 12 ],
          [ '(none)', map { "$said{$_}[1]%" } 1 .. 11 ],
    "each one's before is the after of the generation below it";
is r('HGET', 'canary:race', 'weight'), $said{12}[1],
    'the last generation\'s weight is in the hash';

# ---- errors name the address ---------------------------------------------

my $dead = '127.0.0.1:' . $t->port('nothing');
for my $args (['status', 'app'], ['receipts', 'app'],
              ['receipts', 'app', '--json'], ['set-weight', 'app', '5'],
              ['pins', 'app'], ['unpin', 'app', 't1'])
{
    ($rc, $out, $err) = ctl_run($t, $dead, $args);
    is $rc, 1, "canary-ctl @$args on a closed port: exit 1";
    is $err, "canary-ctl: cannot reach Redis at $dead: Connection refused\n",
        'one line: the address and why';
}

($rc, $out, $err) = ctl_run($t, $dead, ['fleet', 'app']);
is $err, "canary-ctl: cannot read the fleet of app from Redis at $dead: "
         . "Connection refused\n", 'fleet: the address and why';

my $sock = $t->prefix . '/tmp/none.sock';
($rc, $out, $err) = ctl_run($t, "unix:$sock", ['status', 'app']);
is $rc, 1, 'a unix socket that is not there: exit 1';
is $err, "canary-ctl: cannot reach Redis at unix:$sock: "
         . "No such file or directory\n", 'names the socket';

# a sentinel (t/lib/fake_sentinel.pl) that names a master on a closed
# port: the error names the master's address and the sentinel
my $sdir = $t->prefix . '/sentinel';
my $sport = $t->port('sentinel');
mkdir $sdir;
my ($dport) = $dead =~ /:(\d+)$/;
open my $ask, '>', "$sdir/ask" or die;
printf $ask '*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n', length $dport, $dport;
close $ask;
$t->spawn('perl', "$FindBin::Bin/lib/fake_sentinel.pl", $sport, $sdir);
my $deadline = time + 5;
sleep 0.05 until IO::Socket::INET->new("127.0.0.1:$sport") || time > $deadline;
($rc, $out, $err) = ctl_run($t, undef, ['--sentinel', "127.0.0.1:$sport",
                                        '--master', 'm', 'status', 'app']);
is $rc, 1, 'the master a sentinel names is down: exit 1';
is $err, "canary-ctl: cannot reach Redis at $dead (master m, from sentinel "
         . "127.0.0.1:$sport): Connection refused\n",
    'names the address, the master and the sentinel that gave it';

($rc, $out, $err) = ctl_run($t, $redis, ['set-weight', 'badgen', 9, '--force']);
r('HSET', 'canary:badgen', 'generation', 'abc');
($rc, $out, $err) = ctl_run($t, $redis, ['set-weight', 'badgen', 9, '--force']);
like $err, qr/^canary-ctl: Redis at \Q$redis\E refused the change:$/m,
    'a refusal names the address too';

# ---- status: a pin set of the wrong type, a stream entry not only a
# receipt ---------------------------------------------------------------

ctl('set-weight', 'odd', '5', '--force');
r('SET', 'canary:odd:pin:canary', 'not a set');
($rc, $out, $err) = ctl('status', 'odd');
is $rc, 1, 'status, a pin set of the wrong type: exit 1';
like $err, qr/^canary-ctl:[ ]cannot[ ]count[ ]the[ ]pins[ ]in[ ]canary:odd:pin:canary
              [ ]\(Redis[ ]at[ ]\Q$redis\E\):[ ]WRONGTYPE/mx,
    'an error naming the key, with Redis\' reason' or diag $err;
unlike $out, qr/WRONGTYPE/, 'not printed as the count';
r('DEL', 'canary:odd:pin:canary');

# an entry whose first field is not the receipt (written by hand)
my ($newest) = split /\n/, (ctl('receipts', 'odd', '1'))[1];
my $json = (ctl('receipts', 'odd', '1', '--json'))[1];
chomp $json;
r('XADD', 'canary:odd:receipts', '*', 'note', 'by hand', 'receipt', $json);
($rc, $out, $err) = ctl('status', 'odd');
is $rc, 0, 'status odd: exit 0' or diag $err;
like $out, qr/^  last receipt   \Q$newest\E$/m,
    "the last receipt is the entry's receipt field, not its first";

done_testing();
