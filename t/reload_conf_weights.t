#!/usr/bin/perl

# Story: Redis is down and the canary is hurting: the operator's kill
# switch is nginx.conf.  A weight (or cohort_weight) edited in nginx.conf
# since the configuration before applies on "nginx -s reload", is logged,
# and stands until Redis brings a newer generation: a Redis that comes
# back with the old value (the same generation) does not undo it, the
# next write does.  A reload that leaves the value alone keeps Redis's.
# Without canary_redis nginx.conf is the only source: its weights apply
# and the kill switch Redis had turned off is on again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(split_block front_server status_json wait_until);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

sub conf {
    my (%o) = @_;

    my $redis_line = $o{redis} ? "    canary_redis $redis interval=200ms;\n"
                               : '';

    $t->write_conf("    canary_zone canary 1m;\n" . $redis_line
                   . split_block('app', 'stable_up', 'canary_up', $o{weight},
                                 'cohort $http_x_cohort',
                                 "cohort_weight internal $o{internal}")
                   . "\n" . $t->origins . front_server($t), workers => 2);
}

sub app { status_json($t)->{splits}{app} }

# one writer's change, as canary-ctl makes it: fields and generation at
# once, then the cue
sub write_redis {
    my (@fields) = @_;

    my $gen = $t->redis_cli('EVAL',
        "redis.call('HSET', KEYS[1], unpack(ARGV)); "
        . "return redis.call('HINCRBY', KEYS[1], 'generation', 1)",
        1, 'canary:app', @fields);
    $t->redis_cli('PUBLISH', 'canary:app', 'test');

    return $gen;
}

sub weight_seen {
    my ($tenant, $cohort) = @_;

    return $t->route($port, '/', { 'X-Tenant-Id' => $tenant,
                                   $cohort ? ('X-Cohort' => $cohort) : () })
             ->{weight};
}

$t->redis_start;
conf(redis => 1, weight => 10, internal => 50);
$t->start;

is(write_redis(weight => 30, 'weight.internal' => 70), 1,
   'Redis: weight 30, internal 70, generation 1');
ok(wait_until(5, sub { app()->{weight} == 30 }), 'nginx follows Redis: 30');
is(app()->{source}, 'redis', 'source redis');
is(app()->{cohorts}{internal}, 70, 'cohort internal 70 from Redis');

# a reload that changes nothing in nginx.conf keeps Redis's weights
$t->reload;
sleep 0.5;
is(app()->{weight}, 30, 'a reload with nginx.conf unchanged keeps 30');
is(app()->{cohorts}{internal}, 70, 'and internal 70');
is(app()->{source}, 'redis', 'source still redis');

# Redis goes down (with its data saved): the kill switch is nginx.conf
$t->redis_cli('SAVE');
$t->redis_stop;
ok(wait_until(5, sub { !status_json($t)->{redis}{connected} }),
   'nginx sees Redis down');

conf(redis => 1, weight => 0, internal => 0);
my $mark = $t->log_mark;
$t->reload;

is(app()->{weight}, 0, 'weight 0 edited in nginx.conf applies on reload');
is(app()->{source}, 'conf', 'source conf');
is(app()->{cohorts}{internal}, 0, 'cohort_weight internal 0 applies too');
is(weight_seen('t1'), '0', 'requests are routed at weight 0');
is(weight_seen('t1', 'internal'), '0', 'and internal ones at 0');
like($t->log_since($mark),
     qr/canary split "app": weight 0\.00% edited in nginx\.conf replaces 30\.00% from Redis \(generation 1\)/,
     'the override is logged');
like($t->log_since($mark),
     qr/canary split "app": cohort_weight "internal" 0\.00% edited in nginx\.conf replaces 70\.00%/,
     'the cohort override is logged');

# Redis comes back with generation 1 (weight 30): not a newer write
$t->redis_start;
ok(wait_until(10, sub { status_json($t)->{redis}{connected} }),
   'Redis is back');
my $synced = status_json($t)->{redis}{last_sync};
ok(wait_until(5, sub { status_json($t)->{redis}{last_sync} > $synced }),
   'and read again');
sleep 0.5;
is(app()->{weight}, 0, 'the same generation from Redis does not undo the '
   . 'edited weight');
is(app()->{cohorts}{internal}, 0, 'nor the edited cohort weight');
is(weight_seen('t2'), '0', 'requests still at weight 0');

# the next write does
is(write_redis(weight => 40), 2, 'Redis: weight 40, generation 2');
ok(wait_until(5, sub { app()->{weight} == 40 }),
   'the next Redis write applies: 40');
is(app()->{source}, 'redis', 'source redis again');
is(app()->{cohorts}{internal}, 70, "and the hash's internal 70 with it");

# Redis's kill switch, then canary_redis removed: nginx.conf alone
write_redis(enabled => 0);
ok(wait_until(5, sub { !app()->{enabled} }), 'Redis disabled the split');

conf(redis => 0, weight => 5, internal => 50);
$t->reload;

my $app = app();
is($app->{weight}, 5, 'without canary_redis the nginx.conf weight applies');
is($app->{source}, 'conf', 'source conf');
is($app->{cohorts}{internal}, 50, 'and its cohort weight');
ok($app->{enabled}, 'the split is enabled again: nobody could enable it');
is(status_json($t)->{redis}, undef, 'no Redis in the status');
is(weight_seen('t3'), '5', 'requests are routed at weight 5');

# and without Redis each edit applies
conf(redis => 0, weight => 7, internal => 50);
$t->reload;
is(app()->{weight}, 7, 'another edit without Redis: 7');

# Redis again, then only the weight edited: Redis's cohort weight stays,
# also through the next reload, which changes nothing
conf(redis => 1, weight => 7, internal => 50);
$t->reload;
my $g = write_redis(weight => 60, 'weight.internal' => 80, enabled => 1);
ok(wait_until(5, sub { app()->{weight} == 60
                       && app()->{cohorts}{internal} == 80 }),
   "Redis again: 60, internal 80 (generation $g)");

conf(redis => 1, weight => 9, internal => 50);
$t->reload;
is(app()->{weight}, 9, 'the weight alone edited: 9');
is(app()->{cohorts}{internal}, 80, "Redis's cohort weight stays: 80");

$t->reload;
sleep 0.5;
is(app()->{weight}, 9, 'a reload that changes nothing keeps the edit');
is(app()->{cohorts}{internal}, 80, "and Redis's cohort weight");

$t->stop;

done_testing;
