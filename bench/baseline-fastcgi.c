/* The FastCGI baseline of the throughput benchmarks: the least a FastCGI program (libfcgi) can do. */
#include <fcgi_stdio.h>
int main(void) {
    while (FCGI_Accept() >= 0) {
        fputs("Status: 302 Found\r\nLocation: https://www.facebook.com/v26.0/dialog/oauth\r\nContent-Length: 0\r\n\r\n", stdout);
    }
    return 0;
}
