#!/usr/bin/perl

# Story: production Redis wants a password, keeps the canary keys in
# database 3 under the prefix "prod:canary:".
#
# nginx A reads the password from password_file=, selects db=3 and uses
# prefix=; canary-ctl does the same with --password-file, --db and
# --prefix.  A's weights sync, and only from that database and prefix.
# The password never shows in the error log (debug level, every line
# checked), the status page or the Prometheus text.
#
# nginx B has a wrong password: it keeps serving with its nginx.conf
# weight, says why in the error log and on the status page, stays
# "connected": false, does not flood the log while it retries, and
# syncs once its password_file is corrected and it is reloaded.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $PASSWORD = 'Pa55-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 16;
my $WRONG = 'Wr0ng-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 16;
my $PREFIX = 'prod:canary:';
my $DB = 3;

my $ta = CanaryTest->new(name => 'nginx A');
my $tb = CanaryTest->new(name => 'nginx B');

my $redis = '127.0.0.1:' . $ta->redis_start;

# the harness starts Redis open (it waits for PING); then it is locked
$ta->redis_cli('CONFIG', 'SET', 'requirepass', $PASSWORD);

# redis-cli as an operator with the password
sub rcli {
    my (@args) = @_;

    local $ENV{REDISCLI_AUTH} = $PASSWORD;

    return $ta->redis_cli('--no-auth-warning', @args);
}

my $pw_file = $ta->prefix . '/redis.pass';
write_file($pw_file, "$PASSWORD\n");

sub conf {
    my ($t, $file, $weight) = @_;

    $t->write_conf(redis_split_conf($t, weight => $weight,
                       redis => "$redis db=$DB password_file=$file "
                                . "prefix=$PREFIX interval=200ms "
                                . "timeout=300ms node="
                                . ($t == $ta ? 'nginx-a' : 'nginx-b')),
                   workers => 2, log_level => 'debug');
}

# canary-ctl without the operator's REDISCLI_AUTH
sub ctl {
    delete local $ENV{REDISCLI_AUTH};

    return canary_ctl($redis, @_);
}

sub status {
    my ($t, $format) = @_;

    return $format ? status_text($t, $format) : status_json($t);
}

# ---- A: the right password -----------------------------------------------

conf($ta, $pw_file, 5);
$ta->start;

ok wait_until(3, sub { status($ta)->{redis}{connected} }),
    'A is connected with the password from password_file';

my $st = status($ta);
is $st->{redis}{prefix}, $PREFIX, "status shows the prefix $PREFIX";
is $st->{redis}{address}, $redis, 'and the address';

my @opts = ('--password-file', $pw_file, '--prefix', $PREFIX, '--db', $DB);

# canary-ctl writes a split only once a live nginx reports it
ok wait_nodes($redis, 'app', 1, ctl => \@opts), 'A reports split app';

my ($rc, $out) = ctl(@opts, 'set-weight', 'app', 25);
is $rc, 0, 'canary-ctl with --password-file --prefix --db: set-weight 25'
    or diag $out;

ok wait_until(2, sub { weight_of($ta) eq '25' }), 'A routes at weight 25';
is rcli('-n', $DB, 'HGET', "${PREFIX}app", 'weight'), 25,
    "the hash is ${PREFIX}app in db $DB";
is rcli('-n', 0, 'EXISTS', "${PREFIX}app"), 0, 'not in db 0';

# the same key in another database, or another prefix, is not ours
rcli('-n', 0, 'HSET', "${PREFIX}app", qw(weight 99 generation 100));
rcli('-n', $DB, 'HSET', 'canary:app', qw(weight 98 generation 100));
rcli('PUBLISH', "${PREFIX}app", 'x');
rcli('PUBLISH', 'canary:app', 'x');
sleep 0.6;
is weight_of($ta), 25, 'db 0 and the default prefix are ignored';

$st = status($ta);
is $st->{splits}{app}{weight}, 25, 'status weight 25';
is $st->{splits}{app}{source}, 'redis', 'from redis';

# ---- B: a wrong password ---------------------------------------------------

my $wrong_file = $tb->prefix . '/redis.pass';
write_file($wrong_file, "$WRONG\n");

conf($tb, $wrong_file, 7);

my $mark = $tb->log_mark;
$tb->start;

ok $tb->wait_for_log(qr/canary_redis: AUTH failed/, 3, $mark),
    'B logs that AUTH failed';
like $tb->log_since($mark),
    qr/\[error\].*canary_redis: AUTH failed on \Q$redis\E: WRONGPASS/,
    'the line names the address and the reason';

# B retries meanwhile; sample its status for 3 seconds
my ($connected, $unclear, $last) = (0, 0);

my $samples = sample_until(time + 3, 0.1, sub {
    $last = status($tb);
    $connected++ if $last->{redis}{connected};
    $unclear++ unless ($last->{redis}{last_error} // '')
                      =~ /AUTH|WRONGPASS|NOAUTH|password/i });

is $connected, 0, "B's status said connected false in all $samples samples"
    or diag "$connected of $samples said connected true";
is $unclear, 0, "B's last_error named the failed AUTH in all $samples "
    . 'samples' or diag "$unclear of $samples did not, e.g. "
                        . "\"$last->{redis}{last_error}\"";

my $b_log = $tb->log_since($mark);
my @redis_lines = grep_lines(qr/canary_redis:/, $b_log);
cmp_ok scalar(@redis_lines), '<=', 4,
    'B does not flood the log while it retries (3s)'
    or diag scalar(@redis_lines) . " lines, the first ones:\n"
            . join "\n", @redis_lines[0 .. 7];
my @said_connected = grep_lines(qr/\[notice\].*canary_redis: connected/,
                                 $b_log);
is scalar(@said_connected), 0,
    'B never logs "connected" with a wrong password'
    or diag scalar(@said_connected) . " times, e.g. $said_connected[0]";

is weight_of($tb), 7, 'B serves with its nginx.conf weight 7';
is status($tb)->{splits}{app}{source}, 'conf', 'source conf';
is $tb->route($tb->port('http'), '/', { 'X-Tenant-Id' => 'probe' })
      ->{status}, 200, 'requests are served';

# A is not disturbed by B
is weight_of($ta), 25, 'A still at 25';
ok status($ta)->{redis}{connected}, 'A still connected';

# the corrected password, and a reload
write_file($wrong_file, "$PASSWORD\n");
$tb->reload;

ok wait_until(3, sub { weight_of($tb) eq '25' }),
    'B syncs weight 25 once its password_file is right and it reloads';
ok wait_until(2, sub { status($tb)->{redis}{connected} }),
    'B\'s status says connected';

# ---- the password stays secret ---------------------------------------------

($rc, $out) = ctl(@opts, 'set-weight', 'app', 26);
is $rc, 0, 'canary-ctl set-weight 26' or diag $out;
ok wait_until(2, sub { weight_of($ta) eq '26' && weight_of($tb) eq '26' }),
    'both at 26';

for my $t ($ta, $tb) {
    my $log = $t->error_log;

    cmp_ok length($log), '>', 10000, "$t->{name}: a debug log to search";
    unlike $log, qr/\Q$PASSWORD\E/, "$t->{name}: the password is not in "
        . 'the error log';
    unlike $log, qr/\Q$WRONG\E/, "$t->{name}: nor the wrong one";

    my $json = $t->get($t->port('http'), '/canary_status')->{content};
    my $prom = status($t, 'prometheus');

    unlike $json, qr/\Q$PASSWORD\E|\Q$WRONG\E/,
        "$t->{name}: not on the status page";
    unlike $prom, qr/\Q$PASSWORD\E|\Q$WRONG\E/,
        "$t->{name}: not in the Prometheus text";
}

# canary-ctl with a wrong password says so and changes nothing
my $before = rcli('-n', $DB, 'HGET', "${PREFIX}app", 'generation');
my $bad_file = $ta->prefix . '/wrong.pass';
write_file($bad_file, "$WRONG\n");

($rc, $out) = ctl('--password-file', $bad_file, '--prefix', $PREFIX,
                    '--db', $DB, 'set-weight', 'app', 90);
isnt $rc, 0, 'canary-ctl with a wrong password fails';
like $out, qr/WRONGPASS|NOAUTH|AUTH|cannot reach|refused/i,
    'and says why' or diag $out;
unlike $out, qr/\Q$WRONG\E/, 'without printing the password';
is rcli('-n', $DB, 'HGET', "${PREFIX}app", 'generation'), $before,
    'nothing was written';

# canary-sidecar in the same database, with the password and prefix
{
    my $sidecar = "$CanaryTest::ROOT/build/canary-sidecar";
    my @cmd = ($sidecar, '--redis', $redis, '--redis-password-file',
               $pw_file, '--redis-db', $DB, '--prefix', $PREFIX,
               '--split', 'app', '--status',
               'http://127.0.0.1:' . $ta->port('http') . '/canary_status',
               '--id', 'sidecar-db3', '--once');

    my $out = `@cmd 2>&1`;
    is $?, 0, 'canary-sidecar --redis-db 3 --once: one step' or diag $out;
    unlike $out, qr/\Q$PASSWORD\E/, 'its output has no password';

    is rcli('-n', $DB, 'EXISTS', "${PREFIX}app:sidecar"), 1,
        "it keeps its state in db $DB";
    is rcli('-n', 0, 'EXISTS', "${PREFIX}app:sidecar"), 0, 'not in db 0';
    is rcli('-n', $DB, 'HGET', "${PREFIX}app", 'updated_by'), 'sidecar-db3',
        "and wrote the split in db $DB" or diag $out;

    $out = `$sidecar --redis $redis --redis-db x --split app --status http://127.0.0.1:1/ --once 2>&1`;
    is $? >> 8, 2, '--redis-db x: exit 2';
    like $out, qr/invalid --redis-db "x"/, 'naming the bad value';
}

$tb->stop;
$ta->stop;

done_testing;
