#!/usr/bin/perl

# Story: one worker of an nginx syncs Redis, also while a reload's old
# worker lives on.
#
# A long request (the origin holds the answer 8 s) keeps an old worker
# alive across a reload.  Once it is shutting down it closes its Redis
# connections and reads nothing more: Redis lists two clients of this
# nginx (one subscriber, one command connection), both held by the new
# configuration's worker; a PUBLISH is read (seen with MONITOR)
# over one connection only, and a write made meanwhile is applied.  The
# long request still gets its answer, and the old worker exits.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use IO::Socket::INET;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $slow = $t->port('slow');
my $rport = $t->redis_start;
my $redis = "127.0.0.1:$rport";

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $slow, 8000);

sub conf {
    my ($weight) = @_;

    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=500ms;

${\ split_block('app', 'stable_up', 'canary_up', $weight) }
${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

${\ canary_location('/', 'app') }        location /slow {
            proxy_pass http://127.0.0.1:$slow;
            proxy_read_timeout 20s;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF
}

sub status { status_json($t)->{splits}{app} }

# the clients Redis has, but the one asking
sub clients {
    return grep { !/cmd=client\|list/ } $t->redis_cli('CLIENT', 'LIST');
}

# pid of each local port connected to Redis, from /proc
sub port_owners {
    my (%port, %owner);

    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$fh>) {
        my @f = split;
        next unless ($f[2] // '') =~ /:([0-9A-F]{4})$/ && hex($1) == $rport;
        $port{$f[9]} = hex((split /:/, $f[1])[1]);
    }

    for my $pid ($t->worker_pids(all => 1)) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink($fd) // '';
            $owner{$port{$1}} = $pid if $l =~ /^socket:\[(\d+)\]$/
                                        && $port{$1};
        }
    }

    return \%owner;
}

conf(5);
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

ok defined wait_until(10, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$slow") }),
    'the origin on slow listens';

ctl_ok($redis, 'set-weight', 'app', 10);
ok defined wait_until(3, sub { status()->{weight} == 10 }), 'weight 10';
my @c = clients();
is scalar(@c), 2, 'before the reload: two clients of nginx in Redis';

# ---- a reload while an old worker serves a long request -------------------

my $long = fork // die "fork: $!";
if ($long == 0) {
    my $r = HTTP::Tiny->new(timeout => 20)->get("http://127.0.0.1:$port/slow");
    _exit($r->{status} == 200 ? 0 : 1);
}
sleep 0.5;

my %old = map { $_ => 1 } $t->worker_pids;
conf(5);
kill 'HUP', $t->master_pid;

my @new;
ok defined wait_until(10, sub {
        my @live = $t->worker_pids;
        @new = grep { !$old{$_} } @live;
        @new == 2 && !grep { $old{$_} } @live }),
    'the reload started new workers';
my @busy = grep { $old{$_} } $t->worker_pids(all => 1);
cmp_ok scalar(@busy), '>=', 1, "old worker @busy still serves the long "
    . 'request';

# the new worker connected and read; the old one had time to close
ok defined wait_until(5, sub { status_json($t)->{redis}{connected} }),
    'connected';
sleep 1;

@c = clients();
is scalar(@c), 2, 'two clients of nginx in Redis'
    or diag join("\n", @c);
my @subs = grep { /\bsub=[1-9]/ } @c;
is scalar(@subs), 1, 'one subscriber' or diag join("\n", @c);

my $owners = port_owners();
my @holders = sort { $a <=> $b } keys %{{ reverse %$owners }};
is scalar(@holders), 1, 'one worker holds them';
ok !grep({ $old{$_} } @holders), "a new one (@holders), not the old "
    . "worker" or diag explain $owners;

# ---- one PUBLISH, read over one connection ---------------------------------

my $monitor = $t->prefix . '/monitor';
$t->spawn('sh', '-c', "exec redis-cli -h 127.0.0.1 -p $rport MONITOR "
                      . "> $monitor 2>&1");
sleep 0.5;

ctl_ok($redis, 'set-weight', 'app', 30);
ok defined wait_until(3, sub { status()->{weight} == 30 }),
    'a write during the reload applies';
sleep 0.5;

my %readers;
for (do { open my $fh, '<', $monitor or die $!; <$fh> }) {
    # a read: HGETALL, or the script that reads the hash and the sets
    $readers{$1}++
        if /\[\d+ 127\.0\.0\.1:(\d+)\] "(?:HGETALL|EVAL" "[^"]*HGETALL)/;
}
$owners = port_owners();
my @readers = map { $owners->{$_} // "port $_" } sort keys %readers;
is scalar(@readers), 1, "read over one connection (@readers)";
ok !grep({ $old{$_} } @readers), 'not by the old worker';

waitpid $long, 0;
is $? >> 8, 0, 'the long request finished with 200';
ok defined wait_until(10, sub { !grep { kill 0, $_ } keys %old }),
    'the old workers are gone';

is status()->{weight}, 30, 'weight 30';

$t->stop;

done_testing;
