#!/usr/bin/perl

# Story: a guard trip is an incident; it stays until "canary-ctl reset",
# whatever nginx.conf says after it.
#
# nginx with Redis, split "app" at weight 50 with a guard.  The canary
# fails, the guard trips and writes the trip to Redis.  The operator then
# removes the guard line and reloads, while a long request keeps an old
# worker alive: the trip stays (status: configured false, tripped true,
# the reason it tripped on, stays_until "canary-ctl reset"), and through
# the whole reload not one request reaches the canary (the opt-in
# override neither).  set-weight is refused; "canary-ctl reset" re-arms
# it (stays_until null) and routing follows the weight again.
#
# Without Redis nobody could reset: removing canary_redis and reloading
# ends a rollback read from Redis before (the state it had is dropped,
# nginx.conf's weight applies), as a reload without Redis re-arms a
# tripped guard (t/guard_fleet.t).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $WORKERS = 2;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $slow = $t->port('slow');
my $redis = '127.0.0.1:' . $t->redis_start;

# the long request: 3s at this origin
Traffic::slow_origin($t, $slow, 3000);

sub conf {
    my (%o) = @_;

    my @lines = ('override X-Canary-Opt-In true canary');
    unshift @lines, 'guard error_rate=10 min_requests=20 window=10s'
        if $o{guard};
    my $redis_conf = $o{redis}
        ? "canary_redis $redis interval=200ms timeout=300ms;" : '';

    $t->write_conf(<<"EOF", workers => $WORKERS);
    canary_zone canary 1m;
    $redis_conf

${\ split_block('app', 'app_stable', 'app_canary', 50, @lines) }
${\ fault_origins($t) }
    server {
        listen 127.0.0.1:$port;

${\ canary_location('/', 'app') }        location /slow {
            proxy_pass http://127.0.0.1:$slow;
            proxy_read_timeout 10s;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF
}

sub ctl { canary_ctl($redis, @_) }

sub status { status_json($t)->{splits}{app} }

sub opt_in {
    return $t->route($port, '/', { 'X-Tenant-Id' => 't1',
                                   'X-Canary-Opt-In' => 'true' });
}

# the sides 300 tenants go to
sub sides {
    my $res = $t->route_many($port, [ map { { path => '/',
        headers => { 'X-Tenant-Id' => "t$_" } } } 0 .. 299 ]);
    my %n;
    $n{"$_->{side}/$_->{reason}"}++ for @$res;

    return \%n;
}

# ---- the guard trips -------------------------------------------------------

conf(guard => 1, redis => 1);
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

ctl_ok($redis, 'set-weight', 'app', 50);
ok wait_until(3, sub { status()->{weight} == 50 }), 'weight 50';

my $load = Traffic->start(port => $port, clients => 2, pause => 0.002,
                          tenants => 300, record => 1);
sleep 0.5;
fault($t, 1);

ok defined wait_until(5, sub { status()->{guard}{tripped} }),
    'the guard trips';
ok defined wait_until(3, sub {
        $t->redis_cli('HGET', 'canary:app', 'state') eq 'guard_tripped' }),
    'the trip is in Redis';
fault($t, 0);
$load->stop;

my $g = status()->{guard};
my $reason = $g->{reason};
like $reason, qr/^error_rate /, "status: the reason, \"$reason\"";
is $g->{stays_until}, 'canary-ctl reset', 'status: stays until canary-ctl '
    . 'reset';

# ---- the guard line removed, a reload with an old worker alive -------------

conf(guard => 0, redis => 1);

# a long request keeps an old worker busy across the reload
my $long = fork // die "fork: $!";
if ($long == 0) {
    my $r = HTTP::Tiny->new(timeout => 15)
                      ->get("http://127.0.0.1:$port/slow");
    _exit($r->{status} == 200 ? 0 : 1);
}
sleep 0.3;

$load = Traffic->start(port => $port, clients => 2, pause => 0.002,
                       keep_alive => 0, tenants => 300, record => 1);
sleep 0.3;

my $mark = $t->log_mark;
my %old = map { $_ => 1 } $t->worker_pids;

# "nginx -s reload" by hand: $t->reload would wait for the old workers
kill 'HUP', $t->master_pid;

# new workers run, and every old one is shutting down (no longer accepts)
ok defined wait_until(10, sub {
        my @live = $t->worker_pids;
        (grep { !$old{$_} } @live) == $WORKERS && !grep { $old{$_} } @live }),
    'the reload started new workers';
my @busy = grep { $old{$_} } $t->worker_pids(all => 1);
cmp_ok scalar(@busy), '>=', 1, 'an old worker is still alive, serving the '
    . 'long request';

$g = status()->{guard};
is $g->{configured}, JSON::PP::false, 'status: the guard is not configured';
is $g->{tripped}, JSON::PP::true, 'status: the trip stays';
is $g->{reason}, $reason, 'status: with the reason it tripped on';
is $g->{stays_until}, 'canary-ctl reset', 'status: stays until canary-ctl '
    . 'reset';
is $g->{limits}, undef, 'status: no limits';

my $d = opt_in();
is "$d->{side}/$d->{reason}", 'stable/guard',
    'the opt-in override goes to stable, by the guard';

waitpid $long, 0;
is $? >> 8, 0, 'the long request finished with 200';
ok defined wait_until(10, sub { !grep { kill 0, $_ } keys %old }),
    'the old workers are gone';

sleep 0.3;
my $rec = $load->stop->{records};
served_ok($rec);
my @canary = grep { $_->{variant} ne 'stable' || $_->{reason} ne 'guard' }
             @$rec;
is scalar(@canary), 0, 'not one of ' . scalar(@$rec) . ' requests across '
    . 'the reload reached the canary: all to stable by the guard'
    or diag explain $canary[0];

is scalar(log_lines($t, qr/re-armed/, $mark)), 0, 'nothing re-armed it';
is_deeply sides(), { 'stable/guard' => 300 },
    'after the reload: 300 tenants on stable by the guard';

# ---- only a reset ends it --------------------------------------------------

my ($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 2, 'set-weight is refused';
like $out, qr/guard tripped: canary-ctl reset first/, 'reset first, it says';

($rc, $out) = ctl('reset', 'app', '--reason', 'canary fixed');
is $rc, 0, 'canary-ctl reset app' or diag $out;

ok defined wait_until(3, sub { !status()->{guard}{tripped} }),
    'the reset re-arms it';
$g = status()->{guard};
is $g->{stays_until}, undef, 'status: stays_until null';

is_deeply sides(), { 'stable/hash' => 300 }, 'weight 0: all by the hash';
$d = opt_in();
is "$d->{side}/$d->{reason}", 'canary/header',
    'the opt-in override reaches canary again';

ctl_ok($redis, 'set-weight', 'app', 50);
ok wait_until(3, sub { status()->{weight} == 50 }), 'weight 50 again';
my $sides = sides();
cmp_ok $sides->{'canary/hash'} // 0, '>', 100,
    ($sides->{'canary/hash'} // 0) . ' of 300 tenants on canary by the hash';

# ---- without Redis, a reload ends a rollback -------------------------------

($rc, $out) = ctl('rollback', 'app', '--reason', 'drill');
is $rc, 0, 'canary-ctl rollback app' or diag $out;
ok defined wait_until(3, sub { opt_in()->{reason} eq 'rolled_back' }),
    'rolled back: the opt-in override on stable';

conf(guard => 0, redis => 0);
$t->reload;

my $s = status();
is $s->{state}, '', 'without Redis the state of before is dropped';
$d = opt_in();
is "$d->{side}/$d->{reason}", 'canary/header',
    'the reload ended the rollback: the override reaches canary';
$sides = sides();
cmp_ok $sides->{'canary/hash'} // 0, '>', 100,
    ($sides->{'canary/hash'} // 0) . ' of 300 tenants on canary by the '
    . "hash: nginx.conf's weight 50, not the 0 Redis left";
is $s->{source}, 'conf', 'the weight from nginx.conf, the only source';

$t->stop;

done_testing;
