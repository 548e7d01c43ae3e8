#!/usr/bin/perl

# Story: with "upstream api { canary_balancer app; }" the split only
# picks the group; the chosen group's own balancer picks the server, as
# the README promises, with every upstream feature an SRE puts there.
# Groups of several servers (nginx server blocks of this nginx, each
# answering "SIDE NAME", with the upstream connection's serial number
# and request count in headers):
#
#   rr   round robin with weights (2:1:1 on stable, 1:1 on canary): the
#        servers get their shares;
#   hs   "hash $http_x_tenant_id consistent": a tenant asked again, on
#        other connections and workers, lands on the same server;
#   lc   "least_conn" over a server that answers after 300ms and a quick
#        one, under 12 concurrent clients: the slow one gets few requests
#        (round robin would give it half);
#   ka   "keepalive 8": upstream connections are reused, against a
#        control split without keepalive where every request opens one;
#   fo   proxy_next_upstream: the canary group's first server is down;
#        requests fail over to the group's other server, never to stable,
#        and the module counts them as served, not as upstream errors.
#
# Every response comes from the variant the module chose.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my %p = map { $_ => $t->port($_) } qw(s1 s2 s3 c1 c2 slow dead);

Traffic::slow_origin($t, $p{slow}, 300, "stable slow\n");

# the canary group of "fo" has a server that refuses connections
$t->allow_log(qr/connect\(\) failed \(111: Connection refused\) while
                 connecting to upstream.*127\.0\.0\.1:$p{dead}/x);

my $origins = '';

for my $name (qw(s1 s2 s3 c1 c2)) {
    my $side = $name =~ /^s/ ? 'stable' : 'canary';

    $origins .= <<"EOF";
    server {
        listen 127.0.0.1:$p{$name};

        location / {
            add_header X-Origin-Conn     \$connection          always;
            add_header X-Origin-Conn-Req \$connection_requests always;
            return 200 "$side $name\\n";
        }
    }

EOF
}

my @splits = (
    # name  weight  stable group                     canary group
    ['rr',  50, "server 127.0.0.1:$p{s1} weight=2;
                 server 127.0.0.1:$p{s2};
                 server 127.0.0.1:$p{s3};",      "server 127.0.0.1:$p{c1};
                                                  server 127.0.0.1:$p{c2};"],
    ['hs',  50, "hash \$http_x_tenant_id consistent;
                 server 127.0.0.1:$p{s1};
                 server 127.0.0.1:$p{s2};
                 server 127.0.0.1:$p{s3};",      "hash \$http_x_tenant_id;
                                                  server 127.0.0.1:$p{c1};
                                                  server 127.0.0.1:$p{c2};"],
    ['lc',   0, "least_conn;
                 server 127.0.0.1:$p{slow};
                 server 127.0.0.1:$p{s1};",      "server 127.0.0.1:$p{c1};"],
    ['ka',  50, "server 127.0.0.1:$p{s1};
                 keepalive 8;",                  "server 127.0.0.1:$p{c1};
                                                  keepalive 8;"],
    ['nk',  50, "server 127.0.0.1:$p{s1};",      "server 127.0.0.1:$p{c1};"],
    ['fo', 100, "server 127.0.0.1:$p{s1};",      "server 127.0.0.1:$p{dead};
                                                  server 127.0.0.1:$p{c2};"],
);

my $conf = '';
my $locations = '';

for my $s (@splits) {
    my ($name, $weight, $stable, $canary) = @$s;

    $conf .= <<"EOF";
    upstream ${name}_st { $stable }
    upstream ${name}_cn { $canary }
    upstream ${name}_api { canary_balancer $name; }

    canary_split $name {
        stable ${name}_st;
        canary ${name}_cn;
        weight $weight;
    }

EOF

    $locations .= <<"EOF";
        location /$name/ {
${\ CanaryTest::expose_vars() }
            add_header X-Upstream-Addr \$upstream_addr always;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://${name}_api;
        }

EOF
}

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

$conf
$origins
    server {
        listen 127.0.0.1:$port;

$locations
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

# ---- helpers ---------------------------------------------------------------

sub send_all {
    my ($path, $tenants, %opts) = @_;

    my $res = $t->request_many($port, [ map { { path => $path, headers =>
                                                ['X-Tenant-Id' => $_] } }
                                        @$tenants ], %opts);

    return [ map { my $d = CanaryTest::decision($_);
                   $d->{conn} = $_->{headers}{'x-origin-conn'};
                   $d->{conn_req} = $_->{headers}{'x-origin-conn-req'};
                   $d->{addr} = $_->{headers}{'x-upstream-addr'} // '';
                   $d } @$res ];
}

# every response a 200 from the side the module chose
sub served_ok {
    my ($what, $res) = @_;

    my @bad = grep { $_->{status} != 200 || ($_->{side} // '') ne
                     ($_->{variant} // '-') } @$res;

    is scalar(@bad), 0, "$what: every response a 200 from the variant "
        . 'chosen' or diag explain [ @bad[0 .. ($#bad < 2 ? $#bad : 2)] ];
}

# origin => requests, for one side
sub by_origin {
    my ($res, $side) = @_;

    my %n;
    $n{$_->{origin}}++ for grep { $_->{variant} eq $side } @$res;

    return \%n;
}

sub share {
    my ($n, $name) = @_;

    my $all = 0;
    $all += $_ for values %$n;

    return $all ? ($n->{$name} // 0) / $all : 0;
}

sub status_of {
    my ($split) = @_;

    return decode_json($t->get($port, '/canary_status')->{content})
           ->{splits}{$split};
}

# the log phase runs just after the response is sent, so a client can read
# its response and ask for the status before the worker counted it: wait
# (up to 2s) until the split counted $want requests
sub settled_status {
    my ($split, $want) = @_;
    my $s;

    for (1 .. 40) {
        $s = status_of($split);
        my $v = $s->{variants};
        last if $v->{stable}{requests} + $v->{canary}{requests} >= $want;
        select undef, undef, undef, 0.05;
    }

    return $s;
}

my @tenants = map { "tenant-$_" } 1 .. 600;

# ---- round robin, with weights ---------------------------------------------

my $rr = send_all('/rr/', \@tenants, clients => 2);
served_ok('rr', $rr);

my $st = by_origin($rr, 'stable');
my $cn = by_origin($rr, 'canary');
my $shares = join ', ', map { sprintf '%s %.0f%%', $_, 100 * share($st, $_) }
                        sort keys %$st;

is_deeply [sort keys %$st], [qw(s1 s2 s3)], 'rr: all three stable servers';
is_deeply [sort keys %$cn], [qw(c1 c2)], 'rr: both canary servers';
ok share($st, 's1') > 0.40 && share($st, 's1') < 0.60
   && share($st, 's2') > 0.15 && share($st, 's2') < 0.35
   && share($st, 's3') > 0.15 && share($st, 's3') < 0.35,
   "rr: stable by the group's weights 2:1:1 ($shares)";
ok share($cn, 'c1') > 0.35 && share($cn, 'c1') < 0.65,
   sprintf 'rr: canary 1:1 (c1 %.0f%%)', 100 * share($cn, 'c1');

# ---- hash ------------------------------------------------------------------

my @hs_tenants = @tenants[0 .. 199];
my %where;

for my $round (1 .. 3) {
    # other connections, other workers, each round
    my $res = send_all('/hs/', \@hs_tenants, clients => 2,
                       batch => $round * 7);
    served_ok("hs round $round", $res);

    for my $i (0 .. $#hs_tenants) {
        $where{$hs_tenants[$i]}{$res->[$i]{origin} // 'none'}++;
    }
}

my @moved = grep { keys %{$where{$_}} != 1 } @hs_tenants;
is scalar(@moved), 0, 'hs: each tenant on one server in all three rounds'
    or diag explain { map { ($_ => $where{$_}) } @moved[0 .. 2] };

my %used = map { (keys %{$where{$_}})[0] => 1 } @hs_tenants;
is_deeply [sort keys %used], [qw(c1 c2 s1 s2 s3)],
    'hs: spread over every server of both groups';

# ---- least_conn --------------------------------------------------------------

my $lc = send_all('/lc/', [ @tenants[0 .. 299] ], clients => 12, batch => 1);
served_ok('lc', $lc);

my $lcn = by_origin($lc, 'stable');
cmp_ok share($lcn, 'slow'), '<', 0.2,
    sprintf 'lc: the slow server got %d of %d requests (round robin: half)',
            $lcn->{slow} // 0, scalar(@$lc);
cmp_ok $lcn->{slow} // 0, '>', 0, 'lc: it is not left out altogether';

# ---- keepalive -------------------------------------------------------------

my %conns;

for my $name (qw(ka nk)) {
    my $res = send_all("/$name/", [ @tenants[0 .. 199] ], clients => 2);
    served_ok($name, $res);

    my %c = map { ("$_->{origin}/" . ($_->{conn} // '?') => 1) } @$res;
    my ($max) = sort { $b <=> $a } map { $_->{conn_req} // 0 } @$res;

    $conns{$name} = [scalar(keys %c), $max, scalar(@$res)];
}

cmp_ok $conns{ka}[0], '<=', 40,
    "ka: $conns{ka}[2] requests over $conns{ka}[0] upstream connections";
cmp_ok $conns{ka}[1], '>', 1,
    "ka: a connection carried up to $conns{ka}[1] requests";
is $conns{nk}[0], $conns{nk}[2],
    "without keepalive: $conns{nk}[2] requests, as many connections";
is $conns{nk}[1], 1, 'without keepalive: one request per connection';

# ---- proxy_next_upstream within the chosen group -----------------------------

my $fo = send_all('/fo/', [ @tenants[0 .. 39] ], clients => 2, batch => 1);
served_ok('fo', $fo);

is scalar(grep { $_->{origin} ne 'c2' } @$fo), 0,
    'fo: every request served by the canary group\'s live server';

my @failed_over = grep { $_->{addr} eq "127.0.0.1:$p{dead}, 127.0.0.1:$p{c2}" }
                  @$fo;
my @other = grep { $_->{addr} ne "127.0.0.1:$p{c2}"
                   && $_->{addr} ne "127.0.0.1:$p{dead}, 127.0.0.1:$p{c2}" }
            @$fo;

cmp_ok scalar(@failed_over), '>=', 1, scalar(@failed_over) . ' requests '
    . 'tried the dead server first, then the other one of the group';
is scalar(@other), 0, 'fo: no request went anywhere else (stable included)'
    or diag join "\n", map { $_->{addr} } @other[0 .. 2];

my $fs = settled_status('fo', 40)->{variants}{canary};
is $fs->{requests}, 40, 'fo: the module counted the 40 canary requests';
is $fs->{responses}{'2xx'}, 40, 'as served (2xx)';
is $fs->{upstream_errors}, 0, 'not as upstream errors: the failover worked';

# every split counted every request on its variant
my %sent = (rr => 600, hs => 600, lc => 300, ka => 200, nk => 200);

for my $name (sort keys %sent) {
    my $v = settled_status($name, $sent{$name})->{variants};
    is $v->{stable}{requests} + $v->{canary}{requests}, $sent{$name},
        "$name: the module counted $sent{$name} requests";
}

$t->stop;

done_testing;
