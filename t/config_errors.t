#!/usr/bin/perl

# Story: a broken canary configuration never reaches traffic.  "nginx -t"
# refuses it, and its message names the directive and the bad value (and,
# for a line of the file, where it is), so that the operator can fix it
# without reading the module's source.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new(name => 'nginx -t');
my $port = $t->port('http');

# a complete configuration; every piece can be replaced
sub conf {
    my (%o) = @_;

    my $zone = exists $o{zone} ? $o{zone} : 'canary_zone canary 4m;';
    my $split = exists $o{split} ? $o{split} : <<'EOF';
        stable stable_up;
        canary canary_up;
        weight 5;
EOF
    my $loc = exists $o{location} ? $o{location} : 'canary app;';
    my $extra = $o{extra} || '';
    my $server = $o{server} || '';
    my $http = $o{http} || '';

    return <<"EOF";
    $zone
$http
    upstream stable_up { server 127.0.0.1:1; }
    upstream canary_up { server 127.0.0.1:2; }

    canary_split app {
$split
    }

$extra
    server {
        listen 127.0.0.1:$port;
$server
        location / {
            $loc
            proxy_pass http://\$canary_upstream;
        }
    }
EOF
}

# nginx -t must refuse the configuration with a message matching every
# pattern; "at" is a piece of the offending line, whose number the message
# must give
sub refused {
    my ($name, $conf, $at, @re) = @_;

    my $text = $t->write_conf($conf);
    my ($ok, $out) = $t->nginx_t;

    my @missing = grep { $out !~ $_ } @re;

    if (defined $at) {
        my @lines = split /\n/, $text;
        my ($n) = reverse grep { index($lines[$_ - 1], $at) >= 0 } 1 .. @lines;

        push @missing, "the line number of '$at' ($n)"
            unless defined $n && $out =~ /nginx\.conf:$n\b/;
    }

    ok(!$ok && !@missing && $out =~ /test failed/,
       "$name: nginx -t refuses it, naming what is wrong")
        or diag("exit ok: " . ($ok ? 1 : 0) . "\nmissing: "
                . join(', ', @missing) . "\noutput:\n$out");
}


# ---- the valid baseline --------------------------------------------------

{
    $t->write_conf(conf());
    my ($ok, $out) = $t->nginx_t;
    ok($ok, 'the baseline configuration passes nginx -t') or diag($out);

    $t->write_conf(conf(split => <<'EOF', zone => 'canary_zone canary 4m;'));
        stable stable_up;
        canary 127.0.0.1:8081;
        key    $http_x_tenant_id;
        weight 100.00;
        salt   v1.2.3;
        override X-Canary-Opt-In   true canary;
        override X-Summit-Employee true canary from=10.0.0.0/8 from=127.0.0.2;
        override X-Canary          never stable;
        cookie   canary;
        cohort   $http_x_cohort;
        cohort_weight internal 100;
        cohort_weight beta 0.5;
EOF
    ($ok, $out) = $t->nginx_t;
    ok($ok, 'every split directive, a host:port upstream and weight 100.00 '
            . 'pass nginx -t') or diag($out);

    # "canary" before its split, the split before its upstreams
    $t->write_conf(<<"EOF");
    server {
        listen 127.0.0.1:$port;
        canary later;
        location / { proxy_pass http://\$canary_upstream; }
    }

    canary_split later {
        stable late_stable;
        canary late_canary;
    }

    upstream late_stable { server 127.0.0.1:1; }
    upstream late_canary { server 127.0.0.1:2; }

    canary_zone canary 4m;
EOF
    ($ok, $out) = $t->nginx_t;
    ok($ok, 'a split used before it is defined, upstreams and zone defined '
            . 'after it: nginx -t passes') or diag($out);
}


# ---- canary ----------------------------------------------------------------

refused('unknown split in "canary"',
        conf(location => 'canary nosuch;'), undef,
        qr/\[emerg\]/,
        qr/unknown canary_split "nosuch"/,
        qr/in "canary" directive in \S+nginx\.conf:\d+/);

refused('unknown split in "canary" at server level',
        conf(server => '        canary other;'), undef,
        qr/unknown canary_split "other"/);

refused('"canary" twice in one location',
        conf(location => 'canary app; canary app;'), 'canary app; canary app;',
        qr/"canary" directive is duplicate/);

refused('"canary" in the http block',
        conf(extra => '    canary app;  # http level'), 'http level',
        qr/"canary" directive is not allowed here/);

refused('"canary" without "canary_zone"',
        conf(zone => ''), undef,
        qr/"canary" directive in \S+nginx\.conf:\d+ requires "canary_zone"/,
        qr/requires "canary_zone" in the http block/);

refused('a split without "canary_zone" and without "canary"',
        conf(zone => '', location => ''), undef,
        qr/canary_split "app" requires "canary_zone"/);


# ---- weight ----------------------------------------------------------------

for my $w ('101', '-1', 'abc', '5.555', '100.01', '1e2', '5.', '.5', '1000',
           '5%', '0x10', '')
{
    refused("weight '$w'",
            conf(split => <<"EOF"), "weight \"$w\"",
        stable stable_up;
        canary canary_up;
        weight "$w";
EOF
            qr/invalid "weight" "\Q$w\E" in canary_split "app"/,
            qr/a percent from 0 to 100 with at most 2 decimals/);
}

refused('weight with two values',
        conf(split => "stable stable_up; canary canary_up; weight 5 6;"),
        'weight 5 6',
        qr/invalid number of arguments in "weight" of canary_split "app"/);


# ---- upstreams ---------------------------------------------------------------

refused('missing stable',
        conf(split => "        canary canary_up;\n        weight 5;"), undef,
        qr/canary_split "app" has no "stable" upstream/);

refused('missing canary',
        conf(split => "        stable stable_up;\n        weight 5;"), undef,
        qr/canary_split "app" has no "canary" upstream/);

refused('stable given twice',
        conf(split => "stable stable_up; stable canary_up; canary canary_up;"),
        'stable stable_up; stable canary_up;',
        qr/"stable" is duplicate in canary_split "app"/);

refused('undefined stable upstream',
        conf(split => "        stable nosuch_up;\n        canary canary_up;"),
        undef,
        qr/canary_split "app": "stable" upstream "nosuch_up" is not defined/,
        qr/is not defined by an upstream block/);

refused('undefined canary upstream',
        conf(split => "        stable stable_up;\n        canary canary_v2;"),
        undef,
        qr/canary_split "app": "canary" upstream "canary_v2" is not defined/,
        qr/is not defined by an upstream block/);


# ---- the zone ----------------------------------------------------------------

for my $size ('8k', '12k', '16k') {
    refused("canary_zone of $size",
            conf(zone => "canary_zone canary $size;"), 'canary_zone canary',
            qr/canary_zone "canary" is too small: "$size"/,
            qr/the minimum is \d+k/);
}

refused('canary_zone with a size that is no size',
        conf(zone => 'canary_zone canary lots;'), 'canary_zone canary',
        qr/invalid canary_zone size "lots"/);

refused('canary_zone too small for its splits',
        conf(zone => 'canary_zone canary 40k;'), undef,
        qr/canary_zone "canary" is too small: 40k for 1 split,/,
        qr/at least \d+k needed/);

refused('canary_zone twice',
        conf(zone => "canary_zone canary 4m;\n    canary_zone other 4m;"),
        'canary_zone other',
        qr/"canary_zone" directive is duplicate/);


# ---- overrides ---------------------------------------------------------------

for my $cidr ('10.0.0.0/33', 'banana', '300.1.1.1', '10.0.0.0/8x', '') {
    refused("override from=$cidr",
            conf(split => <<"EOF"), "from=$cidr",
        stable stable_up;
        canary canary_up;
        override X-Summit-Employee true canary from=$cidr;
EOF
            qr/invalid "override" address "from=\Q$cidr\E"/,
            qr/in canary_split "app"/);
}

refused('override with an unknown parameter',
        conf(split => <<'EOF'), 'trusted=',
        stable stable_up;
        canary canary_up;
        override X-Summit-Employee true canary trusted=10.0.0.0/8;
EOF
        qr/invalid "override" parameter "trusted=10\.0\.0\.0\/8"/,
        qr/in canary_split "app"/);

refused('override to a variant that does not exist',
        conf(split => <<'EOF'), 'maybe',
        stable stable_up;
        canary canary_up;
        override X-Canary true maybe;
EOF
        qr/invalid "override" variant "maybe" in canary_split "app"/,
        qr/use canary or stable/);

refused('override without a variant',
        conf(split => <<'EOF'), 'override X-Canary true;',
        stable stable_up;
        canary canary_up;
        override X-Canary true;
EOF
        qr/"override" in canary_split "app" needs a header, a value/,
        qr/and canary or stable/);


# ---- the split block ---------------------------------------------------------

refused('unknown directive in the split block',
        conf(split => <<'EOF'), 'wieght',
        stable stable_up;
        canary canary_up;
        wieght 5;
EOF
        qr/unknown directive "wieght" in canary_split "app"/);

refused('a duplicate split',
        conf(extra => <<'EOF'), 'canary_split app {',
    canary_split app {
        stable stable_up;
        canary canary_up;
    }
EOF
        qr/duplicate canary_split "app"/);

refused('a split name of 64 bytes',
        conf(extra => "    canary_split " . ('n' x 64)
                      . " { stable stable_up; canary canary_up; }"),
        'n' x 64,
        qr/invalid canary_split name "n{64}": 1 to 63 bytes/);

refused('an empty cookie name',
        conf(split => <<'EOF'), 'cookie',
        stable stable_up;
        canary canary_up;
        cookie "";
EOF
        qr/empty "cookie" name in canary_split "app"/);

refused('cohort_weight without cohort',
        conf(split => <<'EOF'), undef,
        stable stable_up;
        canary canary_up;
        cohort_weight beta 25;
EOF
        qr/canary_split "app" has "cohort_weight" but no "cohort"/);

refused('cohort_weight 150',
        conf(split => <<'EOF'), 'cohort_weight beta 150',
        stable stable_up;
        canary canary_up;
        cohort $http_x_cohort;
        cohort_weight beta 150;
EOF
        qr/invalid "cohort_weight" "150" for cohort "beta"/,
        qr/in canary_split "app"/);

refused('the same cohort twice',
        conf(split => <<'EOF'), 'cohort_weight beta 2',
        stable stable_up;
        canary canary_up;
        cohort $http_x_cohort;
        cohort_weight beta 1;
        cohort_weight beta 2;
EOF
        qr/duplicate "cohort_weight" cohort "beta" in canary_split "app"/);

refused('17 cohort weights',
        conf(split => "stable stable_up; canary canary_up;\n"
                      . "cohort \$http_x_cohort;\n"
                      . join('', map { "cohort_weight c$_ 1;\n" } 1 .. 17)),
        'cohort_weight c17 1;',
        qr/too many "cohort_weight" in canary_split "app": at most 16/);

refused('a cohort name of 64 bytes',
        conf(split => "stable stable_up; canary canary_up;\n"
                      . "cohort \$http_x_cohort;\n"
                      . "cohort_weight " . ('c' x 64) . " 1;\n"),
        'c' x 64,
        qr/invalid "cohort_weight" cohort "c{64}" in canary_split "app"/,
        qr/1 to 63 bytes/);

# the sidecar and canary-ctl name cohorts so; a byte that is not UTF-8
# broke Prometheus' whole scrape (promtool: invalid label value)
for my $name ("lat\xe9", "b\xc3\xaata", '"tab\\there"', '"a b"') {
    (my $shown = $name) =~ s/^"|"$//g;
    refused("a cohort name \"$shown\"",
            conf(split => "stable stable_up; canary canary_up;\n"
                          . "cohort \$http_x_cohort;\n"
                          . "cohort_weight $name 1;\n"),
            'cohort_weight ',
            qr/invalid "cohort_weight" cohort ".*" in canary_split "app"/,
            qr/printable ASCII without spaces/);
}

for my $d (qw(key cohort)) {
    refused("\"$d\" given twice",
            conf(split => "stable stable_up; canary canary_up;\n"
                          . "$d \$http_a;\n$d \$http_b;\n"),
            "$d \$http_b;",
            qr/"$d" is duplicate in canary_split "app"/);
}


# ---- canary_redis ----------------------------------------------------------

{
    $t->write_conf(conf(http => '    canary_redis 127.0.0.1:6379 '
                                . 'node=web-1.eu_west-2;'));
    my ($ok, $out) = $t->nginx_t;
    ok($ok, 'canary_redis node=web-1.eu_west-2 passes nginx -t')
        or diag($out);

    $t->write_conf(conf(http => '    canary_redis sentinel=127.0.0.1:26379,'
                                . '127.0.0.1:26380 master=mymaster;'));
    ($ok, $out) = $t->nginx_t;
    ok($ok, 'canary_redis sentinel=... master=... passes nginx -t')
        or diag($out);
}

for my $node ('web/1', 'web 1', '', 'n' x 64, "web\xc3\xa9") {
    my $shown = length $node > 20 ? substr($node, 0, 8) . '...' : $node;

    refused("canary_redis node=\"$shown\"",
            conf(http => "    canary_redis 127.0.0.1:6379 \"node=$node\";"),
            'canary_redis',
            qr/invalid canary_redis parameter "node=\Q$node\E"/);
}

refused('canary_split inside a server',
        conf(server => '        canary_split inner { stable a; canary b; }'),
        'canary_split inner',
        qr/"canary_split" directive is not allowed here/);

# canary_redis sentinel=...: names resolved here, as an ADDRESS is
for my $c (
    [ 'a sentinel that does not resolve',
      'sentinel=no-such-host.invalid:26379 master=m',
      qr/invalid canary_redis sentinel "no-such-host\.invalid:26379"/ ],
    [ 'a sentinel with a bad port',
      'sentinel=127.0.0.1:26379,127.0.0.1:99999 master=m',
      qr/invalid canary_redis sentinel "127\.0\.0\.1:99999"/ ],
    [ 'an empty sentinel in the list',
      'sentinel=127.0.0.1:26379,,127.0.0.1:26380 master=m',
      qr/invalid canary_redis sentinel ""/ ],
    [ 'a sentinel on a unix socket',
      'sentinel=unix:/tmp/s.sock master=m',
      qr/invalid canary_redis sentinel "unix:\/tmp\/s\.sock"/ ],
    [ 'sentinel= without master=', 'sentinel=127.0.0.1:26379',
      qr/"sentinel=" and "master=" go together/ ],
    [ 'master= without sentinel=', '127.0.0.1:6379 master=m',
      qr/"sentinel=" and "master=" go together/ ],
    [ 'an address and sentinel=',
      '127.0.0.1:6379 sentinel=127.0.0.1:26379 master=m',
      qr/the sentinels give the address/ ],
    [ 'a master name that is not a name', 'sentinel=127.0.0.1:26379 master=a/b',
      qr/invalid canary_redis parameter "master=a\/b"/ ],
) {
    my ($name, $args, $re) = @$c;

    refused("canary_redis: $name", conf(http => "    canary_redis $args;"),
            "canary_redis $args", $re);
}

done_testing;
