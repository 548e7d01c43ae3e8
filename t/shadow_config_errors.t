#!/usr/bin/perl

# Story: a broken "shadow" or "shadow_ignore" never reaches traffic:
# "nginx -t" refuses it with a message that names the directive, the bad
# value and the line; every valid form passes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CanaryTest;

my $t = CanaryTest->new(name => 'nginx -t');
my $port = $t->port('http');

sub conf {
    my ($lines) = @_;

    return <<"END";
    canary_zone canary 4m;

    upstream stable_up { server 127.0.0.1:1; }
    upstream canary_up { server 127.0.0.1:2; }

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 5;
$lines
    }

    server {
        listen 127.0.0.1:$port;
        location / {
            canary app;
            proxy_pass http://\$canary_upstream;
        }
    }
END
}

sub passes {
    my ($lines, $what) = @_;

    $t->write_conf(conf($lines));
    my ($ok, $out) = $t->nginx_t;
    ok($ok, "$what: passes nginx -t") or diag($out);
}

sub refused {
    my ($lines, $at, @re) = @_;

    my $text = $t->write_conf(conf($lines));
    my ($ok, $out) = $t->nginx_t;

    my @missing = grep { $out !~ $_ } @re;
    my @l = split /\n/, $text;
    my ($n) = grep { index($l[$_ - 1], $at) >= 0 } 1 .. @l;

    push @missing, "the line number of '$at'"
        unless defined $n && $out =~ /nginx\.conf:$n\b/;

    ok(!$ok && !@missing && $out =~ /test failed/,
       "$lines: refused, naming what is wrong")
        or diag("missing: @missing\noutput:\n$out");
}

passes('shadow 10;', 'shadow 10');
passes('shadow 0;', 'shadow 0');
passes('shadow 100.00;', 'shadow 100.00');
passes('shadow 0.5 methods=GET,HEAD,POST compare=status max_body=1m '
       . 'timeout=250ms;', 'every parameter');
passes(q{shadow 10; shadow_ignore '"ts":\d+'; shadow_ignore '[0-9a-f]{32}';},
       'two shadow_ignore');

refused('shadow 101;', 'shadow 101',
        qr/invalid "shadow" "101" in canary_split "app": a percent from 0 /);
refused('shadow -1;', 'shadow -1', qr/invalid "shadow" "-1"/);
refused('shadow 1.234;', 'shadow 1.234', qr/invalid "shadow" "1\.234"/);
refused('shadow ten;', 'shadow ten', qr/invalid "shadow" "ten"/);
refused('shadow;', 'shadow;', qr/"shadow" in canary_split "app" needs a /);
refused('shadow 10; shadow 20;', 'shadow 20',
        qr/"shadow" is duplicate in canary_split "app"/);
refused('shadow 10 methods=GET,FETCH;', 'FETCH',
        qr/invalid method "FETCH" in "methods=GET,FETCH" of "shadow"/);
refused('shadow 10 methods=;', 'methods=',
        qr/invalid parameter "methods=" of "shadow"/);
refused('shadow 10 compare=headers;', 'compare=headers',
        qr/invalid parameter "compare=headers" of "shadow" in canary_split /);
refused('shadow 10 max_body=0;', 'max_body=0',
        qr/invalid parameter "max_body=0"/);
refused('shadow 10 max_body=lots;', 'max_body=lots',
        qr/invalid parameter "max_body=lots"/);
refused('shadow 10 timeout=0;', 'timeout=0',
        qr/invalid parameter "timeout=0"/);
refused('shadow 10 timeout=soon;', 'timeout=soon',
        qr/invalid parameter "timeout=soon"/);
refused('shadow 10 percent=5;', 'percent=5',
        qr/invalid parameter "percent=5"/);
refused(q{shadow 10; shadow_ignore '"ts":(\d+';}, 'shadow_ignore',
        qr/invalid "shadow_ignore" in canary_split "app": /,
        qr/missing closing parenthesis in ""ts":\(\\d\+"/);
refused(q{shadow 10; shadow_ignore '';}, 'shadow_ignore',
        qr/"shadow_ignore" in canary_split "app" needs one regular/);

# shadow_ignore without shadow: a mistake, not a silent no-op
{
    $t->write_conf(conf(q{shadow_ignore 'x';}));
    my ($ok, $out) = $t->nginx_t;
    ok(!$ok && $out =~ /canary_split "app" has "shadow_ignore" without /
       . qr/"shadow"/, 'shadow_ignore without shadow: refused')
        or diag($out);
}

done_testing;
