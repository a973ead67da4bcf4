/* The baseline of the cold-start and throughput benchmarks: the least a CGI program can do. */
#include <stdio.h>
int main(void) {
    fputs("Status: 302 Found\r\nLocation: https://www.facebook.com/v26.0/dialog/oauth\r\nContent-Length: 0\r\n\r\n", stdout);
    return 0;
}
