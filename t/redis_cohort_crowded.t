#!/usr/bin/perl

# Story: weight.COHORT fields nginx.conf does not have (a typo of
# canary-ctl cohort, a cohort since removed from nginx.conf: a rollback
# sets them to 0 and keeps them) never keep a configured cohort's weight
# from applying.
#
# nginx has the 16 cohorts c1 .. c16 at 0.  The hash has three fields of
# cohorts it does not have, written first (typos: "weight.C1", ...), then
# weight.c1 .. weight.c16 at 100.  Every configured cohort goes to 100,
# and each unknown field is logged once.  (nginx took the first 16
# weight.* fields of the hash, in its order, and refused the rest as
# "too many cohorts": c14, c15 and c16 stayed at 0.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use RedisStory qw(:all);

my $KEY = 'canary:app';

my $t = CanaryTest->new(name => 'cohort-crowded');
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

my @c = map { "c$_" } 1 .. 16;

$t->write_conf(redis_split_conf($t,
                   redis => "$redis interval=100ms timeout=200ms",
                   split => [ 'cohort $http_x_cohort',
                              map { "cohort_weight $_ 0" } @c ]),
               workers => 1);
$t->start;

sub status { status_json($t)->{splits}{app} }

my $mark = $t->log_mark;

$t->redis_cli('HSET', $KEY, 'generation', 1, 'weight', 0,
              map({ ("weight.\U$_", 0) } qw(c1 c2 c3)),
              map({ ("weight.$_", 100) } @c));
$t->redis_cli('PUBLISH', $KEY, 'cohorts');

ok wait_until(5, sub { (status()->{generation} // 0) == 1 }),
    'nginx applies generation 1';
sleep 0.5;

my $cohorts = status()->{cohorts};
is_deeply $cohorts, { map { $_ => 100 } @c },
    'every configured cohort at 100, c16 included'
    or diag explain $cohorts;

for my $u (qw(C1 C2 C3)) {
    is scalar(log_lines($t, qr/\[error\].*"weight\.$u": no such /
                            . qr/cohort_weight in nginx\.conf/, $mark)), 1,
        "weight.$u: logged once";
}

is scalar(log_lines($t, qr/too many cohorts/, $mark)), 0,
    'no configured cohort refused as one too many';

my $r = $t->route($port, '/', { 'X-Tenant-Id' => 't1', 'X-Cohort' => 'c16' });
is $r->{weight}, 100, 'a c16 request goes by its weight, 100';

$t->stop;

done_testing;
