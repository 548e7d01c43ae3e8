#!/usr/bin/perl

# Story: someone SETs a split's pin key by hand ("SET canary:app:pin:stable
# oops"): the pin set is now a string, and Redis answers the module's read
# of it with WRONGTYPE.  Before issue 16's review that one error refused
# the whole read, the hash included: a canary-ctl rollback was reported
# done and nginx kept routing to canary.  Now the hash applies (the
# rollback too), the last good pins stay, and the problem is logged once.
# And a hash of many bad fields is summed up once, not on every read.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new;
my $redis = '127.0.0.1:' . $t->redis_start;

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=500ms;

${\ split_block('app', 'stable_up', 'canary_up', 0) }
${\ $t->origins }
${\ front_server($t) }
EOF
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

sub app { status_json($t)->{splits}{app} }

ctl_ok($redis, 'set-weight', 'app', 100);
ctl_ok($redis, 'pin', 'app', 'canary', 'vip');
ok defined wait_until(3, sub { app()->{weight} == 100 }), 'weight 100';

$t->allow_log(qr/pins not read/);
my $mark = $t->log_mark;

$t->redis_cli('DEL', 'canary:app:pin:stable');
$t->redis_cli('SET', 'canary:app:pin:stable', 'oops');

ctl_ok($redis, 'rollback', 'app', '--reason', 'test');
ok defined wait_until(5, sub { app()->{state} eq 'rolled_back' }),
    'the rollback applies, the pin set a string all the same';

my $d = $t->route($t->port('http'), '/', { 'X-Tenant-Id' => 'vip' });
is "$d->{side}/$d->{reason}", 'stable/rolled_back',
    'the pinned tenant is on stable too';

sleep 1;
my @lines = grep { /pins not read/ } split /\n/, $t->log_since($mark);
is scalar(@lines), 1, 'logged once, not on every read'
    or diag join "\n", @lines;
like $lines[0] // '', qr/WRONGTYPE/, 'with what Redis said';

# the key fixed, a reset ends the rollback as ever
$t->redis_cli('DEL', 'canary:app:pin:stable');
ctl_ok($redis, 'reset', 'app', '--reason', 'test');
ok defined wait_until(5, sub {
        ($t->route($t->port('http'), '/', { 'X-Tenant-Id' => 'vip' })
         ->{reason} // '') ne 'rolled_back' }),
    'the key fixed, canary-ctl reset ends the rollback';

# a hash with many bad fields: the first ones logged, the rest summed up
# once, not on every read (it was every poll)
$t->allow_log(qr/rejected field|more rejected values/);
$mark = $t->log_mark;
$t->redis_cli('HSET', 'canary:app', map { ("bogus$_", 'x') } 1 .. 100);
sleep 1.5;
my @more = grep { /more rejected values not logged/ }
           split /\n/, $t->log_since($mark);
is scalar(@more), 1, '"36 more rejected values" logged once in 7 reads'
    or diag join "\n", @more;
$t->redis_cli('HDEL', 'canary:app', map { "bogus$_" } 1 .. 100);

$t->stop;

done_testing;
