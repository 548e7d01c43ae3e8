#!/usr/bin/perl

# Story: configuration management reloads nginx ten times in a row while
# traffic flows and the weights come from Redis.
#
# nginx runs 4 workers; forked clients send requests without keep-alive
# the whole time, and a canary-ctl write lands between reloads 5 and 6.
# Each "nginx -s reload" must finish (the harness waits until the old
# workers are gone and 4 new ones run).  Afterwards: no request failed,
# the weight never left the Redis values, no [alert] was logged, no
# worker is left "shutting down", the new syncing worker is subscribed
# (one subscriber, the old ones' connections closed) and a canary-ctl
# write applies within seconds: by its PUBLISH, as the poll interval is a
# minute (make bench holds the milliseconds).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $WORKERS = 4;
my $RELOADS = 10;

my $t = CanaryTest->new;
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(redis_split_conf($t,
                   redis => "$redis interval=60s timeout=200ms"),
               workers => $WORKERS);

# ---- helpers -------------------------------------------------------------

# interval=60s (writes must arrive by PUBLISH across reloads): nginx
# reports a minute after it starts, so the writes are forced
sub ctl { canary_ctl($redis, @_, '--force') }

sub status { status_json($t) }

# nginx's own sessions in Redis: "name" is empty, "sub" counts channels
sub redis_clients {
    my @c = grep { /\bcmd=(?!client)/ } $t->redis_cli('CLIENT', 'LIST');

    return (scalar(grep { /\bsub=[1-9]/ } @c), scalar(@c));
}

# ---- reloads under load --------------------------------------------------

$t->start;

my ($rc, $out) = ctl('set-weight', 'app', 35);
is $rc, 0, 'canary-ctl set-weight app 35' or diag $out;
ok wait_until(3, sub { my $s = status();
                       $s && $s->{splits}{app}{weight} == 35 }),
    'weight 35 synced';

my $load = Traffic->start(port => $t->port('http'), clients => 3,
                          keep_alive => 0, record => 1,
                          tenant => sub { "t$_[0]-" . $_[1] % 300 });
sleep 0.5;

my $mark = $t->log_mark;
my @took;
my %all_pids = map { $_ => 1 } $t->worker_pids;

for my $n (1 .. $RELOADS) {
    my $t0 = time;
    my $ok = eval { $t->reload; 1 };

    ok $ok, "reload $n finished: old workers gone, $WORKERS new ones"
        or diag $@;
    push @took, time - $t0;

    $all_pids{$_}++ for $t->worker_pids;

    # a write lands in the middle of the reloads
    if ($n == 5) {
        ($rc, $out) = ctl('set-weight', 'app', '35.5');
        is $rc, 0, 'canary-ctl set-weight app 35.5 between reloads'
            or diag $out;
    }

    sleep 0.1;
}

is status()->{splits}{app}{weight}, 35.5,
    'the write made between reloads applied';

diag sprintf "%d reloads under load: %.0fms each on average, the slowest "
             . "%.0fms", $RELOADS, 1000 * eval { my $s = 0; $s += $_ for @took;
             $s / @took }, 1000 * (sort { $b <=> $a } @took)[0];

cmp_ok scalar(keys %all_pids), '==', $WORKERS * ($RELOADS + 1),
    'every reload started a new set of workers';

# ---- after the last reload -----------------------------------------------

my @ps = `ps --ppid ${\ $t->master_pid } -o pid=,args=`;
my @shutting = grep { /shutting down/ } @ps;
is scalar(@shutting), 0, 'no worker is left "shutting down"'
    or diag @ps;
is scalar($t->worker_pids(all => 1)), $WORKERS, "$WORKERS workers, no more";

# the subscription is restored: a write applies at once, not at the
# next poll a minute away
my $t0 = time;
($rc, $out) = ctl('set-weight', 'app', 36);
is $rc, 0, 'canary-ctl set-weight app 36 after the last reload' or diag $out;

my $applied = wait_until(6, sub { weight_of($t) eq '36' });
ok defined $applied && time - $t0 < 5,
    'the write applies within 5s (by its PUBLISH: the poll is 60s away)';
diag sprintf "after %d reloads a canary-ctl write routed in %.0fms",
             $RELOADS, (time - $t0) * 1000;

my $rec = $load->stop->{records};

my %weights;
$weights{$_->{weight} // 'none'}++ for @$rec;

cmp_ok scalar(@$rec), '>', 500, scalar(@$rec) . ' requests during the reloads';
served_ok($rec);
is_deeply [ sort { $a <=> $b } keys %weights ], [ 35, 35.5, 36 ],
    'the weight was never anything but the Redis value'
    or diag explain \%weights;

my ($subs, $conns) = redis_clients();
is $subs, 1, 'one subscriber connection left in Redis';
is $conns, 2, 'two nginx connections in Redis (command and subscriber)';
is $t->redis_cli('PUBSUB', 'NUMSUB', 'canary:app') =~ /\n(\d+)$/ ? $1 : -1,
   1, 'one subscription to canary:app';

my $log = $t->log_since($mark);
unlike $log, qr/\[alert\]/, 'no [alert] during the reloads';
unlike $log, qr/\[crit\]|\[emerg\]/, 'no [crit] or [emerg] either';

my $st = status();
is $st->{redis}{connected}, JSON::PP::true, 'status: connected';
is $st->{splits}{app}{weight}, 36, 'status: weight 36';

$t->stop;

done_testing;
