#!/usr/bin/perl

# Story: README's "Shadow traffic" as an operator copies it.  The split
# of its first snippet (stable api_v1, canary api_v2, weight 0, shadow,
# the shadow_ignore of "ts" and "request_id") passes nginx -t as written;
# at shadow 100 (the snippet's 10, raised so that every request is
# mirrored) two origins whose JSON differs only in those fields match.
# The map recipe: X-Shadow $canary_is_shadow tells the canary, and only
# the canary, that a request is a shadow (stable gets 0 for the mirrored
# client's request); the access_log with if=$canary_not_shadow logs the
# clients' requests and leaves the shadows out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $pre = $t->prefix;
my ($p1, $p2) = ($t->port('origin:v1'), $t->port('origin:v2'));

# the origins log the X-Shadow they got; bodies differ in ts, request_id
my $origins = <<"END";
    log_format xs '\$http_x_shadow';

    upstream api_v1 { server 127.0.0.1:$p1; }
    upstream api_v2 { server 127.0.0.1:$p2; }

    server {
        listen 127.0.0.1:$p1;
        access_log $pre/v1.log xs;
        default_type application/json;
        location / {
            return 200 '{"id":1,"ts":"2026-12-08T00:00:01Z","request_id":"a1"}';
        }
    }

    server {
        listen 127.0.0.1:$p2;
        access_log $pre/v2.log xs;
        default_type application/json;
        location / {
            return 200 '{"id":1,"ts":"2026-12-08T00:00:02Z","request_id":"b2"}';
        }
    }
END

# README, "Shadow traffic", as written (the percent apart)
my $split = <<'END';
    canary_split api {
        stable api_v1;
        canary api_v2;
        weight 0;
        shadow 10;                              # 10% of stable's requests
        shadow_ignore '"(ts|request_id)":"[^"]*"';
    }
END

my $maps = <<'END';
    map "$canary_shadow:$canary_variant" $canary_is_shadow {
        "1:canary"  1;
        default     0;
    }

    map "$canary_shadow:$canary_variant" $canary_not_shadow {
        "1:canary"  0;
        default     1;
    }
END

sub conf {
    my ($percent) = @_;
    (my $s = $split) =~ s/shadow 10;/shadow $percent;/;

    $t->write_conf(<<"END");
    canary_zone canary 1m;
$s
$maps
$origins
    server {
        listen 127.0.0.1:$port;

        location / {
            canary api;
            proxy_set_header X-Shadow \$canary_is_shadow;
            access_log $pre/access.log combined if=\$canary_not_shadow;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
END
}

conf(10);
my ($ok, $out) = $t->nginx_t;
ok $ok, "README's snippets pass nginx -t as written" or diag $out;

conf(100);
$t->start;

sub shadow {
    my $r = $t->get($port, '/canary_status');
    return {} unless $r->{success};
    return decode_json($r->{content})->{splits}{api}{shadow} // {};
}

my $n = 10;
for my $i (1 .. $n) {
    my $r = $t->get($port, "/item/$i", { 'X-Tenant-Id' => "t$i" });
    like $r->{content}, qr/"request_id":"a1"/, "request $i: stable's body";
}

my $done;
for (1 .. 100) {
    my $sh = shadow();
    $done = $sh;
    last if ($sh->{compared} // 0) + ($sh->{canary_errors} // 0)
            + ($sh->{timeouts} // 0) >= $n;
    select undef, undef, undef, 0.1;
}

is $done->{requests}, $n, "each of the $n requests mirrored";
is $done->{compared}, $n, 'each compared';
is $done->{matched}, $n, 'each a match: ts and request_id ignored';

sub lines {
    open my $fh, '<', $_[0] or return ();
    return map { chomp; $_ } <$fh>;
}

my @v1 = lines("$pre/v1.log");
my @v2 = lines("$pre/v2.log");
is scalar @v1, $n, "stable got the $n clients' requests";
is_deeply [ grep { $_ ne '0' } @v1 ], [], 'each with X-Shadow 0';
is scalar @v2, $n, "the canary got $n shadows";
is_deeply [ grep { $_ ne '1' } @v2 ], [], 'each with X-Shadow 1';

my @acc = lines("$pre/access.log");
is scalar @acc, $n, "the access log: the $n clients' requests only"
    or diag join "\n", @acc;
is scalar(grep { m{"GET /item/\d+ HTTP} } @acc), $n, 'each of them';

$t->stop;

done_testing;
