#!/usr/bin/perl

# Story: "shadow 100" in a split at weight 0 mirrors every GET to the
# canary in the background and compares the two responses.  Identical
# origins match; a canary whose JSON differs in one field is a body
# mismatch, with an example; the same field under shadow_ignore matches;
# a gzip-encoding canary against a plain stable with the same content
# matches; compare=status ignores the body and counts a 404 canary as a
# status mismatch; a body above max_body is skipped; POST is not
# mirrored; a stable 5xx is not compared (skipped.stable_error: the
# canary is compared with a healthy stable), a canary 5xx against a
# stable 200 is a status mismatch.  The client always gets stable's response, and the shadows
# are not in the canary's variant counters.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');

my $json_stable = '{"id":7,"v":1,"name":"x"}';
my $json_canary = '{"id":7,"v":2,"name":"x"}';
my $big = 'b' x 2048;

# name => the location's body of an origin server
my %origin = (
    st_same => 'return 200 "same body\n";',
    ca_same => 'return 200 "same body\n";',
    st_json => "default_type application/json; return 200 '$json_stable';",
    ca_json => "default_type application/json; return 200 '$json_canary';",
    ca_gzip => "default_type application/json; gzip on; gzip_min_length 1; "
               . "gzip_http_version 1.0; gzip_types application/json; "
               . "return 200 '$json_stable';",
    ca_404  => 'return 404 "nope\n";',
    st_big  => "return 200 '$big';",
    # these read the request body before they answer (proxy buffering)
    st_body => 'proxy_pass http://body_inner;',
    ca_body => 'proxy_pass http://body_inner;',
    body_inner => 'return 200 "length $http_content_length\n";',
    # these echo request headers: a shadow that lost one differs
    st_echo => 'return 200 "c=$http_cookie x=$http_x_forwarded_for '
               . 'm=$http_x_many a=$arg_a\n";',
    ca_echo => 'return 200 "c=$http_cookie x=$http_x_forwarded_for '
               . 'm=$http_x_many a=$arg_a\n";',
    ca_big  => "return 200 '$big';",
    st_500  => 'return 500 "stable failed\n";',
    ca_500  => 'return 500 "canary failed\n";',
);

my $origins = '';

for my $name (sort keys %origin) {
    my $p = $t->port("origin:$name");

    $origins .= <<"END";
    upstream $name { server 127.0.0.1:$p; }
    server {
        listen 127.0.0.1:$p;
        location / { $origin{$name} }
    }
END
}

# split => [stable, canary, extra lines]
my %split = (
    same   => ['st_same', 'ca_same', ''],
    field  => ['st_json', 'ca_json', ''],
    ignore => ['st_json', 'ca_json', q{shadow_ignore '"v":\d+';}],
    gz     => ['st_json', 'ca_gzip', ''],
    status => ['st_json', 'ca_404', ''],
    big    => ['st_big', 'ca_big', ''],
    hdrs   => ['st_echo', 'ca_echo', ''],
);

my %shadow = (status => 'shadow 100 compare=status;',
              big    => 'shadow 100 max_body=1k;');

my ($splits, $locations) = ('', '');

for my $name (sort keys %split) {
    my ($st, $ca, $extra) = @{$split{$name}};
    my $sh = $shadow{$name} || 'shadow 100;';

    $splits .= <<"END";
    canary_split $name {
        stable $st;
        canary $ca;
        weight 0;
        $sh
        $extra
    }
END

    $locations .= <<"END";
        location /$name {
            canary $name;
            add_header X-Shadow \$canary_shadow always;
            proxy_pass http://\$canary_upstream;
        }
END
}

# POST listed in methods=: mirrored with its body (a canary origin that
# got the Content-Length without the body would wait for it, and the
# shadow would end at its timeout instead of matching)
$splits .= <<"END";
    canary_split post {
        stable st_body;
        canary ca_body;
        weight 0;
        shadow 100 methods=GET,POST timeout=30s;
    }
END

$locations .= <<"END";
        location /post {
            canary post;
            add_header X-Shadow \$canary_shadow always;
            proxy_pass http://\$canary_upstream;
        }
END

# an internal redirect of the shadow keeps its decision: the canary's 404
# goes to a named location that proxies by $canary_upstream again
$splits .= <<"END";
    canary_split redir {
        stable st_json;
        canary ca_404;
        weight 0;
        shadow 100;
    }
END

$locations .= <<"END";
        location /redir {
            canary redir;
            proxy_intercept_errors on;
            error_page 404 = \@redir_again;
            proxy_pass http://\$canary_upstream;
        }

        location \@redir_again {
            proxy_pass http://\$canary_upstream;
        }
END

# stable's 5xx against a canary's 200, and the other way round
for my $pair (['st5xx', 'st_500', 'ca_same'], ['ca5xx', 'st_same', 'ca_500'])
{
    my ($name, $st, $ca) = @$pair;

    $splits .= <<"END";
    canary_split $name {
        stable $st;
        canary $ca;
        weight 0;
        shadow 100;
    }
END

    $locations .= <<"END";
        location /$name {
            canary $name;
            add_header X-Shadow \$canary_shadow always;
            proxy_pass http://\$canary_upstream;
        }
END
}

# the upstream-level form: canary_balancer picks the canary's group
$splits .= <<"END";
    canary_split bal {
        stable st_json;
        canary ca_json;
        weight 0;
        shadow 100;
    }

    upstream bal_up { canary_balancer bal; }
END

$locations .= <<"END";
        location /bal {
            canary bal;
            add_header X-Shadow \$canary_shadow always;
            proxy_pass http://bal_up;
        }
END

$t->write_conf(<<"END");
    canary_zone canary 4m;

$splits
$origins
    server {
        listen 127.0.0.1:$port;

$locations
        location = /canary_status { canary_status; }
    }

    server {
        listen 127.0.0.1:${\ $t->port('h2') } http2;

$locations
    }
END

$t->start;

sub status {
    my $r = $t->get($port, '/canary_status');
    return decode_json($r->{content})->{splits};
}

# every shadow sent has its verdict (compared, or counted aside)
sub settled {
    my ($name, $want) = @_;
    my $sh;

    for (1 .. 100) {
        $sh = status()->{$name}{shadow};
        my $done = $sh->{compared} + $sh->{canary_errors} + $sh->{timeouts}
                   + $sh->{skipped}{body_too_large}
                   + $sh->{skipped}{stable_error};
        last if $sh->{requests} >= $want && $done == $sh->{requests};
        sleep 0.1;
    }

    return $sh;
}

# the gzip canary really answers gzip (else its test proves nothing)
{
    my $r = $t->get($t->port('origin:ca_gzip'), '/gz',
                    { 'Accept-Encoding' => 'gzip' });
    is($r->{headers}{'content-encoding'}, 'gzip',
       'the gzip canary origin compresses');
}

my $n = 5;
my %want_body = (same => "same body\n", field => $json_stable,
                 ignore => $json_stable, gz => $json_stable,
                 status => $json_stable, big => $big,
                 hdrs => "c= x= m= a=1\n");

for my $name (sort keys %split) {
    for my $i (1 .. $n) {
        my $r = $t->get($port, "/$name/x?a=$i",
                        { 'Accept-Encoding' => 'gzip' });

        next unless $i == 1;

        is($r->{status}, 200, "$name: the client gets stable's status");
        is($r->{content}, $want_body{$name}, "$name: and stable's body");
        is($r->{headers}{'x-shadow'}, '1', "$name: \$canary_shadow is 1");
    }
}

my $same = settled('same', $n);
is($same->{requests}, $n, 'same: every GET mirrored');
is($same->{compared}, $n, 'same: every one compared');
is($same->{matched}, $n, 'same: identical origins match');
cmp_ok($same->{match_rate}, '==', 100, 'same: match_rate 100');
is_deeply($same->{examples}, [], 'same: no mismatch example');
is($same->{percent}, 100, 'same: percent');

my $field = settled('field', $n);
is($field->{compared}, $n, 'field: compared');
is($field->{matched}, 0, 'field: none matched');
is($field->{mismatched}{body}, $n, 'field: body mismatches');
is($field->{mismatched}{status}, 0, 'field: same status');
ok(defined $field->{match_rate} && $field->{match_rate} == 0,
   'field: match_rate 0');
is(scalar @{$field->{examples}}, $n, 'field: an example each');
my $ex = $field->{examples}[0];
is($ex->{uri}, "/field/x?a=$n", 'field: the newest example first, its URI');
is($ex->{stable_status}, 200, 'field: example stable_status');
is($ex->{canary_status}, 200, 'field: example canary_status');
is($ex->{stable_bytes}, length $json_stable, 'field: example stable_bytes');
is($ex->{canary_bytes}, length $json_canary, 'field: example canary_bytes');
ok($ex->{at} > time - 60 && $ex->{at} <= time + 1, 'field: example at');

my $ignore = settled('ignore', $n);
is($ignore->{matched}, $n, 'ignore: the field under shadow_ignore matches');
is($ignore->{mismatched}{body}, 0, 'ignore: no body mismatch');

my $gz = settled('gz', $n);
is($gz->{matched}, $n, 'gz: a gzip canary matches a plain stable');

# the upstream-level form
for my $i (1 .. $n) {
    my $r = $t->get($port, "/bal/$i");
    is($r->{content}, $json_stable, 'bal: the client gets stable') if $i == 1;
}

my $bal = settled('bal', $n);
is($bal->{mismatched}{body}, $n,
   'bal: canary_balancer sends the shadows to the canary group');

# a request with cookies, repeated headers and X-Forwarded-For: every
# header is copied into the shadow through nginx's own handlers
{
    my $r = $t->get($port, '/hdrs/h?a=%41', {
        'Cookie' => ['a=1; b=2', 'c=3'],
        'X-Forwarded-For' => ['10.0.0.1', '10.0.0.2'],
        'X-Many' => ['1', '2', '3'],
        'User-Agent' => 'MSIE 6.0; Opera',
        'Accept-Encoding' => 'gzip',
    });
    like($r->{content}, qr/^c=a=1; b=2; c=3 x=10\.0\.0\.1, 10\.0\.0\.2 m=1 a=%41$/,
         'headers: stable got them');
    my $s = settled('hdrs', $n + 1);
    is($s->{matched}, $n + 1, 'headers: the shadow matched');
}

# the shadow's internal redirect
{
    my $r = $t->get($port, '/redir/1');
    is($r->{content}, $json_stable, 'redir: the client gets stable');
    my $s = settled('redir', 1);
    is($s->{mismatched}{status}, 1,
       'redir: after its error_page the shadow still went to the canary');
    is($s->{examples}[0]{canary_status}, 404, 'redir: the canary\'s 404');
}

# an HTTP/2 client's request is mirrored the same
SKIP: {
    skip 'curl is not installed', 2 unless -x '/usr/bin/curl';

    my $h2 = $t->port('h2');
    my $out = `/usr/bin/curl -s --http2-prior-knowledge http://127.0.0.1:$h2/ignore/h2 2>&1`;
    is($out, $json_stable, 'HTTP/2: the client gets stable');
    my $s = settled('ignore', $n + 1);
    is($s->{matched}, $n + 1, 'HTTP/2: its shadow matched');
}

my $st = settled('status', $n);
is($st->{mismatched}{status}, $n, 'status: a 404 canary mismatches');
is($st->{examples}[0]{canary_status}, 404, 'status: example says 404');

my $bigs = settled('big', $n);
is($bigs->{skipped}{body_too_large}, $n, 'big: above max_body: skipped');
is($bigs->{compared}, 0, 'big: not compared');
is($bigs->{match_rate}, undef, 'big: match_rate null');

# HEAD is mirrored: no body on either side
{
    my $r = $t->request('HEAD', $port, '/gz/h', { 'Accept-Encoding' => 'gzip' });
    is($r->{status}, 200, 'HEAD: served');
    is($r->{headers}{'x-shadow'}, '1', 'HEAD: mirrored');
    my $s = settled('gz', $n + 1);
    is($s->{matched}, $n + 1, 'HEAD: compared and matched');
}

# POST is not mirrored by default
{
    my $r = $t->request('POST', $port, '/same/p', {}, content => 'x=1');
    is($r->{status}, 200, 'POST: served by stable');
    is($r->{headers}{'x-shadow'}, '0', 'POST: $canary_shadow is 0');
    my $s = settled('same', $n);
    is($s->{requests}, $n, 'POST: no shadow sent');
    is($s->{skipped}{method}, 1, 'POST: counted in skipped.method');
}

# stable's 500 says nothing of the canary: not compared; the canary's
# 500 against stable's 200 is the canary's: a status mismatch
{
    my $r = $t->get($port, '/st5xx/1');
    is($r->{status}, 500, 'st5xx: the client gets stable\'s 500');
    is($r->{headers}{'x-shadow'}, '1', 'st5xx: mirrored');
    my $s = settled('st5xx', 1);
    is($s->{skipped}{stable_error}, 1, 'st5xx: skipped.stable_error 1');
    is($s->{compared}, 0, 'st5xx: not compared');
    is($s->{mismatched}{status}, 0, 'st5xx: no status mismatch');
    is($s->{canary_errors}, 0, 'st5xx: no canary error');
    is($s->{match_rate}, undef, 'st5xx: match_rate null');
    is_deeply($s->{examples}, [], 'st5xx: no mismatch example');

    $r = $t->get($port, '/ca5xx/1');
    is($r->{status}, 200, 'ca5xx: the client gets stable\'s 200');
    $s = settled('ca5xx', 1);
    is($s->{compared}, 1, 'ca5xx: compared');
    is($s->{mismatched}{status}, 1, 'ca5xx: a status mismatch');
    is($s->{skipped}{stable_error}, 0, 'ca5xx: skipped.stable_error 0');
    is($s->{examples}[0]{canary_status}, 500, 'ca5xx: example says 500');
}

# the same in Prometheus, and promtool accepts it
{
    my $r = $t->get($port, '/canary_status?format=prometheus');
    my $text = $r->{content};

    like($text, qr/^canary_shadow_requests_total\{split="same"\} $n$/m,
         'prometheus: canary_shadow_requests_total');
    like($text,
         qr/^canary_shadow_mismatches_total\{split="field",kind="body"\} $n$/m,
         'prometheus: canary_shadow_mismatches_total body');
    like($text,
         qr/^canary_shadow_mismatches_total\{split="status",kind="status"\} $n$/m,
         'prometheus: canary_shadow_mismatches_total status');
    like($text, qr/^canary_shadow_match_ratio\{split="same"\} 1\.0+$/m,
         'prometheus: canary_shadow_match_ratio 1');
    like($text, qr/^canary_shadow_match_ratio\{split="field"\} 0\.0+$/m,
         'prometheus: canary_shadow_match_ratio 0');
    like($text,
         qr/^canary_shadow_skipped_total\{split="st5xx",reason="stable_error"\} 1$/m,
         'prometheus: canary_shadow_skipped_total stable_error');
    like($text,
         qr/^canary_shadow_mismatches_total\{split="ca5xx",kind="status"\} 1$/m,
         'prometheus: a canary 500 is a status mismatch');
    unlike($text, qr/^canary_shadow_match_ratio\{split="big"\}/m,
           'prometheus: no ratio while nothing was compared');

    SKIP: {
        skip 'promtool is not installed', 1 unless -x '/usr/bin/promtool';

        my $file = $t->prefix . '/metrics.txt';
        open my $fh, '>', $file or die "$file: $!";
        print $fh $text;
        close $fh;

        my $out = `/usr/bin/promtool check metrics < $file 2>&1`;
        is($?, 0, 'prometheus: promtool check metrics passes') or diag($out);
    }
}

# POST with methods=GET,POST: mirrored, body and all
{
    my $body = 'k=' . ('v' x 5000);
    my $r = $t->request('POST', $port, '/post/p', {}, content => $body);
    is($r->{status}, 200, 'methods=GET,POST: POST served by stable');
    is($r->{content}, "length 5002\n", 'methods=GET,POST: stable read it');
    is($r->{headers}{'x-shadow'}, '1', 'methods=GET,POST: POST mirrored');

    my $s = settled('post', 1);
    is($s->{matched}, 1, 'methods=GET,POST: the canary got the body');
    is($s->{timeouts}, 0, 'methods=GET,POST: no timeout');

    # a chunked body: read whole, sent with its length
    my @chunks = ('a=' . ('1' x 300), '&b=' . ('2' x 300));
    $r = $t->request('POST', $port, '/post/chunked', {},
                     content => sub { shift @chunks });
    is($r->{content}, "length 605\n", 'a chunked body: stable got 605 bytes');
    is($r->{headers}{'x-shadow'}, '1', 'a chunked body: mirrored');
    $s = settled('post', 2);
    is($s->{matched}, 2, 'a chunked body: the canary got the same');

    # above client_body_buffer_size nginx writes the body to a file: not
    # copied into a shadow, counted as too large
    my $big_body = 'k=' . ('v' x 100_000);
    $r = $t->request('POST', $port, '/post/big', {}, content => $big_body);
    is($r->{content}, "length 100002\n", 'a body in a file: stable got it');
    is($r->{headers}{'x-shadow'}, '0', 'a body in a file: not mirrored');
    $s = status()->{post}{shadow};       # counted before the response
    is($s->{skipped}{body_too_large}, 1,
       'a body in a file: counted in skipped.body_too_large');
    is($s->{requests}, 2, 'a body in a file: no shadow sent');
}

# shadows are not canary traffic
my $all = status();
for my $name (sort(keys %split), 'bal', 'st5xx', 'ca5xx') {
    is($all->{$name}{variants}{canary}{requests}, 0,
       "$name: no shadow in the canary's variant counters");
}

$t->stop;

done_testing;
