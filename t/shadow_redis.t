#!/usr/bin/perl

# Story: the shadow percent changes at run time through the field
# "shadow" of the split's Redis hash, validated like "weight".  nginx.conf
# says "shadow 0": nothing is mirrored.  Redis says 100: every request to
# stable is mirrored, in every worker.  Bad values (150, -1, 1.234, abc,
# empty) are each refused with one error-log line naming the field and
# the value, and the percent in force stays.  A reload keeps Redis's
# percent.  Redis says 0: mirroring stops.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use RedisStory qw(:all);

my $KEY = 'canary:app';

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

my $conf = redis_split_conf($t,
                            redis => "$redis interval=100ms timeout=200ms",
                            weight => 0,
                            split => [ 'shadow 0' ]);

$t->write_conf($conf, workers => 2);
$t->start;

ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

my ($rc, $out) = canary_ctl($redis, 'set-weight', 'app', 0);
is $rc, 0, 'canary-ctl set-weight app 0' or diag $out;

sub shadow { status_json($t)->{splits}{app}{shadow} }

sub percent_is {
    my ($want) = @_;
    return wait_until(5, sub { shadow()->{percent} == $want });
}

# n requests; how many shadows they sent
sub mirrored {
    my ($n) = @_;

    my $before = shadow()->{requests};

    for my $i (1 .. $n) {
        $t->get($port, "/r$i", { 'X-Tenant-Id' => "t$i" });
    }

    return shadow()->{requests} - $before;
}

is shadow()->{percent}, 0, 'nginx.conf: shadow 0';
is(mirrored(10), 0, 'shadow 0: nothing mirrored');

$t->redis_cli('HSET', $KEY, 'shadow', '100');
$t->redis_cli('PUBLISH', $KEY, 'shadow');
ok percent_is(100), 'Redis "shadow" 100: in force';

# both workers serve: every request is mirrored whichever one it reaches
my $sent = mirrored(20);
is $sent, 20, 'shadow 100 from Redis: every request mirrored';

for my $bad ('150', '-1', '1.234', 'abc', '') {
    my $mark = $t->log_mark;

    $t->redis_cli('HSET', $KEY, 'shadow', $bad);
    $t->redis_cli('PUBLISH', $KEY, 'bad');

    my $re = qr/\[error\].*split "app": rejected field "shadow" value /
             . qr/"\Q$bad\E"/;

    ok wait_until(3, sub { log_lines($t, $re, $mark) }),
        "shadow \"$bad\": refused, logged with field and value";

    is shadow()->{percent}, 100, "shadow \"$bad\": 100 stays in force";
}

$t->redis_cli('HSET', $KEY, 'shadow', '100');
$t->redis_cli('PUBLISH', $KEY, 'good');

# a reload keeps what Redis said, not nginx.conf's 0
$t->reload;
ok percent_is(100), 'after a reload: Redis\'s 100 stays';
$sent = mirrored(5);
is $sent, 5, 'after a reload: still mirrored';

$t->redis_cli('HSET', $KEY, 'shadow', '0');
$t->redis_cli('PUBLISH', $KEY, 'off');
ok percent_is(0), 'Redis "shadow" 0: in force';
is(mirrored(10), 0, 'shadow 0 from Redis: nothing mirrored');

$t->stop;

done_testing;
