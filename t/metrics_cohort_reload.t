#!/usr/bin/perl

# Story: the per-cohort counters go with the cohort's name across a
# reload that reorders the cohorts, also for requests that an old worker
# still holds.
#
# gen 1: cohorts a (100) and b (0); 5 requests of a (canary), 3 of b
#        (stable); then 2 long requests of a (3 s, a slow origin) are
#        decided by a in its slot, the first.
# gen 2: cohorts b, c, a: b now has the first slot, a the third.  The
#        counters moved with the names (a: 5 on canary, b: 3 on stable,
#        c: 0) and cohort_traffic lists them in nginx.conf's new order.
#        2 more of a and 1 of b on the new worker.
# When the long requests end in the old worker, they count on a, not on
# b, whose slot they were decided in: a 9 on canary, b 4 on stable and 0
# on canary.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $t = CanaryTest->new(name => 'cohort-reload');
my $port = $t->port('http');
my $slow_port = $t->port('slow');

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $slow_port, 3000,
          "slow\n");

my $deadline = time + 10;
until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$slow_port")) {
    die "the slow origin does not listen\n" if time > $deadline;
    sleep 0.05;
}

sub conf {
    my (@cohorts) = @_;

    my $weights = join '', map { "        cohort_weight $_->[0] $_->[1];\n" }
                               @cohorts;

    $t->write_conf(<<"EOF", workers => 1);
    canary_zone canary 4m;

    canary_split api {
        stable stable_up;
        canary canary_up;
        weight 0;
        key \$http_x_tenant_id;
        cohort \$http_x_cohort;
$weights    }

${\ $t->origins }
    upstream slow_origin { server 127.0.0.1:$slow_port; }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary api;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location /long {
            canary api;
            proxy_pass http://slow_origin;
        }

        location = /canary_status { canary_status; }
    }
EOF
}

# a reload that does not wait for the old worker: it keeps its requests
sub reload_now {
    my %old = map { $_ => 1 } $t->worker_pids(all => 1);
    my $mark = $t->log_mark;

    my ($rc, $out) = $t->_run_nginx('-s', 'reload');
    die "nginx -s reload: exit $rc: $out\n" if $rc;

    my $until = time + 30;

    until (grep({ !$old{$_} } $t->worker_pids) >= 1
           && !grep({ $old{$_} } $t->worker_pids))
    {
        my $since = $t->log_since($mark);
        die "reload refused:\n$since\n" if $since =~ /\[emerg\]/;
        die "reload did not start a new worker:\n$since\n" if time > $until;
        sleep 0.05;
    }

    sleep 0.1;
}

sub traffic {
    my $r = $t->get($port, '/canary_status?split=api');
    die "status: $r->{status}\n" unless $r->{status} == 200;
    return decode_json($r->{content})->{splits}{api}{cohort_traffic};
}

# name -> "stable/canary" requests
sub counts {
    return { map { $_->{name} => "$_->{stable}{requests}/"
                                 . "$_->{canary}{requests}" } @{traffic()} };
}

my $n = 0;

sub send_as {
    my ($c, $k, $want) = @_;

    my $res = $t->route_many($port, [ map {
        { path => '/', headers => [ 'X-Tenant-Id' => 't' . ++$n,
                                    'X-Cohort' => $c ] }
    } 1 .. $k ], clients => 1);

    my @bad = grep { $_->{variant} ne $want || $_->{reason} ne 'cohort' }
                   @$res;
    ok !@bad, "$k of $c on $want" or diag explain $bad[0];
}

sub open_long {
    my ($tenant) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!\n";
    print $s "GET /long HTTP/1.1\r\nHost: t\r\nX-Tenant-Id: $tenant\r\n"
             . "X-Cohort: a\r\nConnection: close\r\n\r\n";
    return $s;
}

sub read_all {
    my ($s, $seconds) = @_;

    my $buf = '';
    my $sel = IO::Select->new($s);
    my $until = time + $seconds;

    while (time < $until) {
        next unless $sel->can_read(0.2);
        my $got = sysread($s, $buf, 65536, length $buf);
        last unless $got;
    }

    return $buf;
}


conf([a => 100], [b => 0]);
$t->start;

send_as('a', 5, 'canary');
send_as('b', 3, 'stable');

my @long = map { open_long("long-$_") } 1 .. 2;

# the old worker has read them and decided: they wait on the slow origin
sleep 0.5;

conf([b => 0], [c => 50], [a => 100]);
reload_now();

is_deeply [ map { $_->{name} } @{traffic()} ], [qw(b c a)],
    'cohort_traffic in nginx.conf\'s new order';
is_deeply counts(), { a => '0/5', b => '3/0', c => '0/0' },
    'the counters moved with the names';

send_as('a', 2, 'canary');
send_as('b', 1, 'stable');

for my $s (@long) {
    like read_all($s, 15), qr{^HTTP/1.1 200 .*slow\n$}s,
        'a long request ends in the old worker';
    close $s;
}

my $ok = 0;
$deadline = time + 10;
until ($ok || time > $deadline) {
    my $c = counts();
    $ok = $c->{a} eq '0/9' && $c->{b} eq '4/0';
    sleep 0.1 unless $ok;
}

is_deeply counts(), { a => '0/9', b => '4/0', c => '0/0' },
    'the long requests count on a, not on b whose slot they started in';

$t->stop;

done_testing;
