#!/usr/bin/perl
# README's first configuration, the one a newcomer copies into
# /etc/nginx/conf.d/canary.conf, runs as written: this test takes the
# first ```nginx block of README.md, puts it inside http {} of an
# nginx.conf shaped like Debian's (the module loaded first, as
# modules-enabled does; conf.d included in http), and changes only what
# is the reader's own: the upstreams' addresses (loopback origins), the
# listen port and the Redis address (a test Redis).  Then the promises
# around it: tenants split by the bucket formula at the block's weight
# and salt, the opt-in header and the cookie send to canary, the
# employee header from outside 10.0.0.0/8 is ignored, /canary_status
# answers, and README's Install steps' operator rollback (canary-ctl
# rollback) puts everyone on stable.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(decode_json);
use CanaryTest;
use RedisStory qw(canary_ctl wait_nodes wait_until);

my $readme = do {
    local (@ARGV, $/) = "$CanaryTest::ROOT/README.md";
    <>;
};
my ($block) = $readme =~ /^```nginx\n(.*?)^```$/ms;
ok defined $block, "README.md has an nginx configuration block"
    or BAIL_OUT('no ```nginx block in README.md');

unlike $block, qr/^\s*(?:load_module|http\s*\{|events)/m,
    'it is a conf.d file (inside http {}), as README says';

my ($salt) = $block =~ /^\s*salt\s+(\S+);/m;
my ($weight) = $block =~ /^\s*weight\s+([\d.]+);/m;
ok defined $salt && defined $weight, "its split has a salt ($salt) "
    . "and a weight ($weight)";

my $t = CanaryTest->new(name => 'readme');
my $p = $t->prefix;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_start;

# the reader's own values: each must be there to be replaced, or README
# changed and this test with it
my $conf = $block;
my %origin = (api_v1 => ['stable', $t->port('v1')],
              api_v2 => ['canary', $t->port('v2')]);
for my $up (sort keys %origin) {
    my $addr = "127.0.0.1:$origin{$up}[1]";
    ok $conf =~ s/^(\s*upstream\s+$up\s*\{).*?\}/$1 server $addr; }/m,
        "upstream $up gets a loopback origin";
}
ok $conf =~ s/^(\s*listen\s+)\d+;/${1}127.0.0.1:$port;/m, 'listen: a test port';
ok $conf =~ s/^(\s*canary_redis\s+)127\.0\.0\.1:6379;/$1$redis;/m,
    'canary_redis: the test Redis';

my $origins = join '', map { <<"EOF" } sort keys %origin;
server {
    listen 127.0.0.1:$origin{$_}[1];
    location / { return 200 "$origin{$_}[0] $_\\n"; }
}
EOF

mkdir "$p/conf.d" or die "$p/conf.d: $!";
open my $fh, '>', "$p/conf.d/canary.conf" or die "$!";
print $fh $conf, $origins;
close $fh;

my $user = $> == 0 ? 'user nobody nogroup;' : '';
$t->write_conf(undef, raw => <<"EOF");
load_module $p/ngx_http_canary_module.so;
$user
worker_processes 2;
master_process on;
daemon off;
error_log $p/error.log info;
pid $p/nginx.pid;

events { worker_connections 256; }

http {
    access_log off;
    client_body_temp_path $p/tmp/client_body;
    proxy_temp_path       $p/tmp/proxy;
    fastcgi_temp_path     $p/tmp/fastcgi;
    uwsgi_temp_path       $p/tmp/uwsgi;
    scgi_temp_path        $p/tmp/scgi;

    include $p/conf.d/*.conf;
}
EOF

my ($ok, $out) = $t->nginx_t;
ok $ok, "nginx -t accepts README's configuration" or diag $out;

# and under this machine's own Debian nginx.conf, as README says: a copy
# of /etc/nginx (its default site, its other modules, its http settings)
# with README's block as conf.d/canary.conf and the module enabled
SKIP: {
    skip "nginx -t of Debian's nginx.conf opens /var/log/nginx: needs root", 1
        if $> != 0;
    skip "optional: no Debian /etc/nginx/nginx.conf here", 1
        unless -f '/etc/nginx/nginx.conf' && -d '/etc/nginx/modules-enabled';

    my $etc = "$p/etc-nginx";
    # t/package_deb.t may add or remove a canary file there meanwhile
    # (prove -j2): those go anyway
    system('cp', '-a', '/etc/nginx', $etc);
    -f "$etc/nginx.conf" or die "cp -a /etc/nginx $etc failed";
    unlink glob("$etc/conf.d/*"), glob("$etc/modules-enabled/*canary*");
    my $main = do { local (@ARGV, $/) = "$etc/nginx.conf"; <> };
    $main =~ s{/etc/nginx/}{$etc/}g;
    for (["$etc/nginx.conf", $main],
         ["$etc/modules-enabled/50-mod-http-canary.conf",
          "load_module $p/ngx_http_canary_module.so;\n"],
         ["$etc/conf.d/canary.conf", $block])
    {
        open my $w, '>', $_->[0] or die "$_->[0]: $!";
        print $w $_->[1];
        close $w;
    }
    # Debian's other modules are named relative to its prefix
    my %env = CanaryTest::_nginx_env();
    local @ENV{keys %env} = values %env;
    my ($rc, $r) = CanaryTest::_run($CanaryTest::NGINX, '-t',
        '-p', '/usr/share/nginx/', '-c', "$etc/nginx.conf",
        '-e', "$p/debian-t.log");
    is $rc, 0, "nginx -t: README's block, unchanged, as conf.d/canary.conf "
        . "of Debian's /etc/nginx/nginx.conf" or diag $r;
}
$t->start;

# what the README's add_header says is who answered
sub side {
    my ($h) = @_;

    my $res = $t->get($port, '/', $h);
    my $said = $res->{headers}{'x-canary'} // '(none)';
    my ($body) = split ' ', $res->{content} // '';

    return $res->{status} == 200 && $said eq ($body // '') ? $said
           : "status $res->{status}, X-Canary $said, body " . ($body // '');
}

my (%n, @wrong);
for my $i (1 .. 200) {
    my $key = "tenant-$i";
    my $want = CanaryTest::is_canary($salt, $key, $weight)
               ? 'canary' : 'stable';
    my $got = side({ 'X-Tenant-Id' => $key });
    $n{$got}++;
    push @wrong, "$key: $got, not $want" if $got ne $want;
}
is "@wrong", '', "200 tenants each on the side the bucket formula gives "
    . "at weight $weight, salt $salt";
ok $n{canary} && $n{stable},
    "both sides serve: canary $n{canary}, stable $n{stable}";
is side({ 'X-Tenant-Id' => 'tenant-1' }), side({ 'X-Tenant-Id' => 'tenant-1' }),
    'a tenant stays on its side';

# the tenants README's Install steps name, on the sides it says
my @named = $readme =~ /-H 'X-Tenant-Id: (\S+)'[^\n]*\n\s*# X-Canary: (\w+)/g;
push @named, $readme =~ /e\.g\. (tenant-\d+), get (canary)/;
ok @named >= 4, 'README names tenants and their sides: '
    . "@named[map { $_ * 2 } 0 .. $#named / 2]";
while (my ($key, $want) = splice @named, 0, 2) {
    is side({ 'X-Tenant-Id' => $key }), $want, "README: $key gets $want";
}

my ($on_stable) = grep { !CanaryTest::is_canary($salt, $_, $weight) }
                  map { "tenant-$_" } 1 .. 200;
is side({ 'X-Tenant-Id' => $on_stable, 'X-Canary-Opt-In' => 'true' }),
    'canary', "the opt-in header sends $on_stable to canary";
is side({ 'X-Tenant-Id' => $on_stable, 'Cookie' => 'canary=always' }),
    'canary', 'so does the cookie canary=always';
is side({ 'X-Tenant-Id' => $on_stable, 'X-Summit-Employee' => 'true' }),
    'stable', 'the employee header from 127.0.0.1 (not 10.0.0.0/8) is ignored';

my $res = $t->get($port, '/canary_status');
is $res->{status}, 200, '/canary_status answers 127.0.0.1';
my $doc = eval { decode_json($res->{content}) };
ok $doc && $doc->{splits}{api}, 'with split api in its JSON';

# README, Install: an operator's rollback puts everyone on stable
ok wait_nodes($redis, 'api', 1), 'nginx reports split api to Redis';
my $rc;
($rc, $out) = canary_ctl($redis, 'rollback', 'api', '--reason', 'readme');
is $rc, 0, 'canary-ctl rollback api --reason ...' or diag $out;
my @canary = grep { CanaryTest::is_canary($salt, $_, $weight) }
             map { "tenant-$_" } 1 .. 200;
ok wait_until(10, sub {
        !grep { side({ 'X-Tenant-Id' => $_ }) ne 'stable' } @canary }),
    'then the canary tenants are on stable';
is side({ 'X-Tenant-Id' => $canary[0], 'X-Canary-Opt-In' => 'true' }),
    'stable', 'and the opt-ins too';

$t->stop;
done_testing;
