#!/usr/bin/perl

# Story: while a reload commits nginx.conf to the zone, an old worker's
# requests of a cohort the reload leaves in its slot are routed by the
# weight in force and counted, and stay counted.
#
# nginx (Redis) has cohort_weight a 0; Redis says weight.a 100.  3
# requests of a go to canary.  gdb holds the master inside the commit
# (zone.c's cohort loop, at its first cohort, after the slots were
# copied aside), the old worker serves 5 more of a, then the master
# goes on.  The 5 go to canary, at 100, and a counts 8 on canary.
# (The commit wrote nginx.conf's 0 into a's slot and then Redis's 100
# back: the 5 went to stable at 0, and the counters copied aside were
# written back over them: a showed 3.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use RedisStory qw(:all);

plan skip_all => 'gdb is not installed' unless -x '/usr/bin/gdb';

my $KEY = 'canary:app';

my $t = CanaryTest->new(name => 'cohort-commit');
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

my $conf = redis_split_conf($t,
               redis => "$redis interval=100ms timeout=200ms",
               weight => 0,
               split => [ 'cohort $http_x_cohort', 'cohort_weight a 0' ]);
$t->write_conf($conf, workers => 1);
$t->start;

sub status { status_json($t)->{splits}{app} }

sub a_counts {
    my ($c) = grep { $_->{name} eq 'a' } @{status()->{cohort_traffic}};
    return "$c->{stable}{requests}/$c->{canary}{requests}";
}

my $n = 0;

sub send_a {
    my ($k) = @_;
    return [ map { $t->route($port, '/', { 'X-Tenant-Id' => 't' . ++$n,
                                           'X-Cohort' => 'a' }) } 1 .. $k ];
}

$t->redis_cli('HSET', $KEY, 'generation', 1, 'weight.a', 100);
$t->redis_cli('PUBLISH', $KEY, 'a');
ok wait_until(5, sub { (status()->{cohorts}{a} // -1) == 100 }),
    'weight.a 100 from Redis';

my @before = grep { $_->{variant} eq 'canary' } @{send_a(3)};
is scalar @before, 3, '3 of a on canary';
ok wait_until(3, sub { a_counts() eq '0/3' }), 'a counts 0/3';

# the line of zone.c where gdb holds the master: the cohort loop's look
# for a cohort's name among the slots copied aside (run for every one)
my $src = "$FindBin::Bin/../src/ngx_http_canary_zone.c";
open my $fh, '<', $src or die "$src: $!";
my $line;
while (<$fh>) {
    if (/^\s+if \(old\[j\]\.name_len == /) { $line = $.; last }
}
close $fh;
ok $line, "zone.c: the cohort loop's look by name at line $line"
    or BAIL_OUT('no line for gdb');

my $master = $t->master_pid;
my $paused = $t->prefix . '/gdb-paused';
my $resume = $t->prefix . '/gdb-resume';
my $out = $t->prefix . '/gdb.out';

my $gdb = $t->spawn('sh', '-c', join(' ', 'exec gdb -q -batch -nx',
    '-p', $master,
    "-ex 'set pagination off'",
    "-ex 'handle all nostop noprint pass'",
    "-ex 'break ngx_http_canary_zone.c:$line'",
    "-ex 'continue'",
    "-ex 'shell touch $paused'",
    "-ex 'shell while [ ! -e $resume ]; do sleep 0.05; done'",
    "-ex 'delete'",
    "-ex 'detach'",
    "> $out 2>&1 < /dev/null"));

my $gdb_text = sub { -e $out ? do { local (@ARGV, $/) = ($out); <> } : '' };
wait_until(20, sub { $gdb_text->() =~ /Breakpoint 1 at/ }, 0.1)
    or BAIL_OUT("gdb did not set its breakpoint:\n" . $gdb_text->());

# the same nginx.conf again: a stays in its slot
my ($rc, $text) = $t->_run_nginx('-s', 'reload');
is $rc, 0, 'nginx -s reload' or diag $text;

ok defined wait_until(20, sub { -e $paused }, 0.05),
    'gdb holds the master in the commit'
    or diag $gdb_text->();

my $during = send_a(5);
my @stable = grep { $_->{variant} ne 'canary' } @$during;
ok !@stable, 'the old worker routes a at 100 meanwhile'
    or diag explain $stable[0];

open my $r, '>', $resume or die "$resume: $!";
close $r;
ok defined wait_until(20, sub { waitpid($gdb, WNOHANG) == $gdb }),
    'gdb let the master go';

ok wait_until(10, sub { (status()->{generation} // 0) >= 1
                        && a_counts() eq '0/8' }),
    'a counts the 5 made during the commit: 0/8'
    or diag 'a: ' . a_counts();

$t->stop;

done_testing;
