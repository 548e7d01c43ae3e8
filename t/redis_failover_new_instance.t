#!/usr/bin/perl

# Story: Redis fails over to a replica that lagged behind.
#
# Redis A serves nginx (2 workers); Redis B replicates A, then stops
# replicating (it lags: it has generation 2 of split "app", A goes on to
# generation 4).  Meanwhile nginx's guard trips split "gd" and writes the
# trip to A.  Then A dies and B takes A's address (CONFIG SET port), as a
# failover does.  The README's rules:
#
#   - nginx notes which Redis it reads (run_id): after connecting to a
#     different instance, the first read of each split applies whatever
#     its generation: app goes back to B's weight 40 and generation 2,
#     though A had given it 55 at generation 4 (without the rule, 2 < 4
#     would be ignored as stale), and B's pins apply;
#   - bad values in that read are still refused (B holds enabled=maybe:
#     refused, enabled stays 1);
#   - a tripped guard is written to the new Redis again: B gets gd's trip
#     (state guard_tripped, a receipt, by nginx-guard), and gd stays
#     tripped in nginx;
#   - the next write on B (generation 3) applies as usual.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $t = CanaryTest->new(name => 'nginx');
my $tb = CanaryTest->new(name => 'redis B');

# a replica syncs at once (not after the 5s diskless-sync delay)
my $pa = $t->redis_start('--repl-diskless-sync-delay', 0);
my $pb = $tb->redis_start;
my $redis = "127.0.0.1:$pa";

$t->allow_log(qr/canary guard tripped for split "gd"/);
$t->allow_log(qr/canary_redis: .*field "enabled"/);

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=300ms;

${\ split_block('app', 'stable_up', 'canary_up', 5) }
${\ split_block('gd', 'app_stable', 'app_canary', 50,
                'guard error_rate=10 min_requests=20 window=5s') }
${\ $t->origins }
${\ fault_origins($t) }
${\ front_server($t, locations => [ ['/', 'app'], ['/gd/', 'gd'] ]) }
EOF
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

# ---- helpers ---------------------------------------------------------------

# redis-cli on a port (B changes its port below)
sub cli {
    my ($port, @args) = @_;

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec 'redis-cli', '-h', '127.0.0.1', '-p', $port, @args
            or _exit(127);
    }

    my $out = do { local $/; <$fh> } // '';
    close $fh;
    chomp $out;

    return wantarray ? split(/\n/, $out, -1) : $out;
}

sub ctl { canary_ctl($redis, @_) }

sub app { status_json($t)->{splits}{app} }
sub gd  { status_json($t)->{splits}{gd} }

# ---- A, with B following it ------------------------------------------------

cli($pb, 'REPLICAOF', '127.0.0.1', $pa);

ctl_ok($redis, 'set-weight', 'app', 30);
ctl_ok($redis, 'pin', 'app', 'canary', 'vip-b');
ctl_ok($redis, 'set-weight', 'app', 40);

ok wait_until(5, sub { cli($pb, 'HGET', 'canary:app', 'generation') eq '3'
                       && cli($pb, 'INFO', 'replication')
                          =~ /master_link_status:up/ }),
    'B has replicated generation 3';

# B stops following: from here it lags
is scalar(cli($pb, 'REPLICAOF', 'NO', 'ONE')), 'OK', 'B stops replicating';
cli($pb, 'HSET', 'canary:app', 'enabled', 'maybe');

ctl_ok($redis, 'unpin', 'app', 'vip-b');
ctl_ok($redis, 'set-weight', 'app', 55);

ok wait_until(3, sub { my $s = app();
                       $s->{weight} == 55 && $s->{generation} == 5 }),
    'nginx follows A: weight 55, generation 5';
is app()->{pins}{canary}, 0, 'and no pin';

my ($run_a) = cli($pa, 'INFO', 'server') =~ /run_id:(\w+)/;
my ($run_b) = cli($pb, 'INFO', 'server') =~ /run_id:(\w+)/;
isnt $run_a, $run_b, 'A and B are different instances';

# gd's guard trips, and writes its trip to A
my $load = Traffic->start(port => $t->port('http'), clients => 2,
                          path => '/gd/', tenants => 300);
sleep 0.5;
fault($t, 1);

ok wait_until(5, sub { gd()->{guard}{tripped} }), 'the guard of gd trips';
ok wait_until(3, sub { cli($pa, 'HGET', 'canary:gd', 'state')
                       eq 'guard_tripped' }), 'the trip is written to A';
$load->stop;
fault($t, 0);

is scalar(cli($pb, 'EXISTS', 'canary:gd')), '0', 'B has none of it';

# ---- A dies, B takes its address -------------------------------------------

my $mark = $t->log_mark;

$t->redis_stop;
is scalar(cli($pb, 'CONFIG', 'SET', 'port', $pa)), 'OK',
    "B now listens on $redis";

my $took = wait_until(8, sub {
    my $s = status_json($t);
    $s->{redis}{connected} && $s->{splits}{app}{generation} == 3 });
ok defined $took, 'nginx reconnects, to B';
diag sprintf 'failover: nginx read B %.0fms after A died',
             ($took // 99) * 1000;

my $app = app();
is $app->{weight}, 40, "B's weight 40 applies: generation 3 after 5, "
    . 'from another instance';
is $app->{generation}, 3, 'status: generation 3';
is $app->{pins}{canary}, 1, "B's pin applies too";
is $app->{enabled}, JSON::PP::true, 'enabled=maybe from B is refused: '
    . 'still enabled';
is $t->route($t->port('http'), '/', { 'X-Tenant-Id' => 'vip-b' })->{reason},
    'pin', 'vip-b routes by the pin B has';
ok scalar(log_lines($t, qr/canary_redis: .*"enabled".*maybe/, $mark)),
    'the bad value is logged';

# the trip goes to the new Redis
ok wait_until(3, sub { cli($pa, 'HGET', 'canary:gd', 'state')
                       eq 'guard_tripped' }),
    'the trip of gd is written to B';
like scalar(cli($pa, 'HGET', 'canary:gd', 'updated_by')), qr/^nginx-guard:/,
    'by the guard';
my @r = cli($pa, 'XRANGE', 'canary:gd:receipts', '-', '+');
is scalar(grep { /"operation":"guard_tripped"/ } @r), 1,
    'with a guard_tripped receipt in B';
is scalar(log_lines($t, qr/canary guard trip of split "gd" written to /
                        . qr/\Q$redis\E as generation/, $mark)), 1,
    'the log says it wrote the trip again';
is gd()->{guard}{tripped}, JSON::PP::true, 'gd stays tripped in nginx';
is $t->route($t->port('http'), '/gd/x', { 'X-Tenant-Id' => 't1' })->{reason},
    'guard', 'gd routes by the guard';

# B's next write is the newer one, once nginx reports to B
ok wait_nodes($redis, 'app', 1), 'nginx reports split app to B';
ctl_ok($redis, 'set-weight', 'app', 45);
ok wait_until(3, sub { app()->{weight} == 45 }),
    'a write on B applies (generation 4)';

$t->stop;

done_testing;
