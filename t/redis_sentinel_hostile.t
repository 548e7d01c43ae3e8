#!/usr/bin/perl

# Story: the sentinels an operator gets wrong, or an attacker answers for.
# A real Redis, a real redis-server, and fake sentinels
# (t/lib/fake_sentinel.pl) that say what the test wants:
#   - of two sentinels, the first unreachable at once (ENETUNREACH, as a
#     sentinel on a network with no route is; 224.0.0.1 here): nginx asks
#     the second (it was skipped: a connect that failed at once moved the
#     turn twice, and the first was asked twice instead);
#   - a subscription fed a malformed message: the worker lives on (hiredis
#     asserts on it, and the worker died on SIGABRT), nginx stays on Redis;
#   - the only sentinel down a while (the subscription lost, and the
#     round that would set it up again unanswered), then back: nginx
#     subscribes again (it did only after a Redis error);
#   - reloads while a sentinel is asked and never answers: the old worker
#     exits at once, nothing leaks nor is used after it is freed (run it
#     with the ASan build);
#   - canary-ctl --sentinel, the first sentinel silent (it hung, redis-cli
#     has no timeout), the second giving port 99999 (it stopped there on
#     "invalid --redis"): the third is asked and the command runs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new(name => 'sentinel-hostile');
my $rport = $t->redis_start;

$t->allow_log(qr/canary_redis: (lost the|cannot connect|no sentinel|.* did not answer)/);

# a fake sentinel, in its own directory of answers
sub fake {
    my ($name) = @_;

    my $dir = $t->prefix . "/$name";
    my $port = $t->port($name);

    mkdir $dir;
    my $pid = $t->spawn('perl', "$FindBin::Bin/lib/fake_sentinel.pl", $port,
                        $dir);

    my $deadline = time + 5;
    sleep 0.05 until IO::Socket::INET->new("127.0.0.1:$port")
                     || time > $deadline;

    return { dir => $dir, address => "127.0.0.1:$port", pid => $pid };
}

# it and the children serving its connections
sub down {
    my ($s) = @_;

    my @pids = ($s->{pid}, split ' ', `pgrep -P $s->{pid}`);

    kill 'TERM', @pids;
    waitpid $s->{pid}, 0;
}

sub subscribes {
    my ($s) = @_;

    my $n = () = `cat $s->{dir}/log 2>/dev/null` =~ /^SUBSCRIBE/mg;

    return $n;
}

sub answer {
    my ($s, $file, $text) = @_;

    write_file("$s->{dir}/$file", $text);
}

sub addr_reply {
    my ($host, $port) = @_;

    return sprintf '*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n',
                   length($host), $host, length($port), $port;
}

sub redis_status { status_json($t)->{redis} }

my $good = fake('good');
answer($good, 'ask', addr_reply('127.0.0.1', $rport));

# ---- the first sentinel unreachable, the second asked ----------------------

$t->write_conf(redis_split_conf($t,
                   redis => "sentinel=224.0.0.1:26379,$good->{address} "
                            . 'master=m interval=200ms timeout=300ms'));
$t->start;

ok wait_until(5, sub { my $r = redis_status();
                       $r->{connected}
                       && $r->{address} eq "127.0.0.1:$rport" }),
    'the first sentinel unreachable: nginx asks the second, connects'
    or diag explain redis_status();

# ---- the sentinel down, then back --------------------------------------------

ok wait_until(5, sub { subscribes($good) == 1 }), 'nginx subscribed';

my $mark = $t->log_mark;
down($good);
ok $t->wait_for_log(qr/lost the \+switch-master subscription/, 3, $mark),
    'the sentinel down: the subscription is lost';
ok $t->wait_for_log(qr/no sentinel gave the address of master "m"/, 5,
                    $mark),
    'and asking again finds none';
sleep 1;
$good = fake('good');

ok wait_until(8, sub { subscribes($good) == 2 }),
    'the sentinel back: nginx subscribes again'
    or diag $t->log_since($mark);
ok redis_status()->{connected}, 'connected to Redis throughout';

$t->stop;

# ---- a malformed message on the subscription -------------------------------

my $evil = fake('evil');
answer($evil, 'ask', addr_reply('127.0.0.1', $rport));
answer($evil, 'push', '*1\r\n$7\r\nmessage\r\n');

$t->write_conf(redis_split_conf($t,
                   redis => "sentinel=$evil->{address} "
                            . 'master=m interval=200ms timeout=300ms'));
$t->start;

my @workers = $t->worker_pids;

ok wait_until(5, sub { redis_status()->{connected} }),
    'nginx connects to the master the sentinel names';
ok wait_until(5, sub { my $n = () = `cat $evil->{dir}/log 2>/dev/null`
                                    =~ /^SUBSCRIBE/mg;
                       $n >= 2 }),
    'it subscribes, is fed a malformed message, and subscribes again';
ok $t->wait_for_log(qr/lost the \+switch-master subscription to sentinel \Q$evil->{address}\E: a malformed message/, 3),
    'the log says why the subscription went';
is_deeply [$t->worker_pids], \@workers, 'the worker lives on';
ok redis_status()->{connected}, 'still connected to Redis';

$t->stop;

# ---- reloads in the middle of a question --------------------------------------

my $mute = fake('mute');
answer($mute, 'ask', 'silent');
answer($mute, 'push', 'silent');

$t->write_conf(redis_split_conf($t,
                   redis => "sentinel=$mute->{address},$good->{address} "
                            . 'master=m interval=200ms timeout=3s'));
$t->start;

for my $i (1 .. 3) {
    ok wait_until(5, sub { my $n = () = `cat $mute->{dir}/log 2>/dev/null`
                                        =~ /^SENTINEL/mg;
                           $n >= $i }),
        "reload $i: the silent sentinel is being asked";
    $t->reload;
}

ok wait_until(10, sub { redis_status()->{connected} }),
    'after the timeout, the second sentinel names the master';

$t->stop;

# ---- canary-ctl: a silent sentinel, a bad port ------------------------------
# (nginx is stopped: no node reports the split, hence --force)

my $silent = fake('silent');
answer($silent, 'ask', 'silent');
my $badport = fake('badport');
answer($badport, 'ask', addr_reply('127.0.0.1', 99999));

# a hang fails the test instead of holding it
$SIG{ALRM} = sub { die "canary-ctl hung\n" };
alarm 20;

my $t0 = time;
my ($rc, $out, $err) = ctl_run($t, '',
    ['--sentinel', "$silent->{address},$badport->{address},$good->{address}",
     '--master', 'm', 'set-weight', 'app', 7, '--force']);
my $took = time - $t0;

is $rc, 0, 'canary-ctl: the silent sentinel and the bad port passed over'
    or diag $err;
ok $took < 10, sprintf 'in %.1fs', $took;
is scalar($t->redis_cli('HGET', 'canary:app', 'weight')), 7,
    'the write reaches the master the third sentinel names';

($rc, $out, $err) = ctl_run($t, undef,
    ['--sentinel', "$silent->{address},$badport->{address}",
     '--master', 'm', 'status', 'app']);
alarm 0;
is $rc, 1, 'none of them: exit 1';
like $err, qr/\Q$silent->{address}\E: no answer in 2s; \Q$badport->{address}\E: 127\.0\.0\.1 99999/,
    'naming what each said' or diag $err;

done_testing;
